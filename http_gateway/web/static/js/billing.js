// /billing: the plans, as GET /api/billing/plans describes them.
import { $, api, formatBytes, showMessage } from "./common.js";

const list = $("#plans");
const current = $("#current-plan");
const currentPlan = current ? current.dataset.plan : null;

function price(plan) {
  const amount = (plan.priceMonthly / 100).toLocaleString(undefined, {
    style: "currency", currency: (plan.currency || "usd").toUpperCase(), minimumFractionDigits: 0,
  });
  return amount;
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function render(plans) {
  list.replaceChildren();
  for (const plan of plans) {
    const card = document.createElement("article");
    card.className = "card plan";
    if (plan.id === "creator") card.classList.add("featured");
    card.setAttribute("aria-labelledby", `plan-${plan.id}`);
    const title = document.createElement("h2");
    title.id = `plan-${plan.id}`;
    title.textContent = plan.name;
    const cost = document.createElement("p");
    cost.className = "price";
    cost.textContent = price(plan);
    {
      const per = document.createElement("span");
      per.textContent = " / month";
      cost.append(per);
    }
    const limits = plan.limits || {};
    const ul = document.createElement("ul");
    ul.append(
      item(`${limits.monthlyMinutes} minutes of video a month`),
      item(`Uploads up to ${formatBytes(limits.maxUploadBytes)}`),
      item(`Up to ${limits.clipsPerJob} clips per video`),
      item(limits.apiAccess ? "API keys for server-to-server use" : "Web app (no server-to-server API keys)"),
    );
    card.append(title, cost, ul);
    if (plan.id === currentPlan) {
      const badge = document.createElement("p");
      badge.className = "current";
      badge.textContent = "✓ Your plan";
      card.append(badge);
    }
    list.append(card);
  }
  list.removeAttribute("aria-busy");
}

api("/api/billing/plans")
  .then((body) => render(body.plans || []))
  .catch((err) => {
    list.replaceChildren();
    showMessage($("#plans-error"), `Couldn't load the plans. ${err.message}`);
  });
