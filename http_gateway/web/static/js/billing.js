// /billing: the plans (GET /api/billing/plans), this month's usage (GET /api/billing/usage), and with
// Stripe billing on, upgrade buttons (POST /api/billing/checkout) and the portal (POST /api/billing/portal).
import { $, api, formatBytes, fullDate, showMessage } from "./common.js";

const list = $("#plans");
const current = $("#current-plan");
const currentPlan = current ? current.dataset.plan : null;
const stripeOn = list.dataset.billing === "stripe";
const signedIn = list.dataset.signedIn === "yes";
const errorBox = $("#plans-error");

function price(plan) {
  return (plan.priceMonthly / 100).toLocaleString(undefined, {
    style: "currency", currency: (plan.currency || "usd").toUpperCase(), minimumFractionDigits: 0,
  });
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

/** POST a billing route and follow the Stripe URL it answers with. */
async function goTo(path, button, body) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const answer = await api(path, { method: "POST", json: body });
    window.location.assign(answer.url);
  } catch (err) {
    showMessage(errorBox, err.message);
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
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
    const per = document.createElement("span");
    per.textContent = " / month";
    cost.append(per);
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
    } else if (stripeOn && plan.priceMonthly > 0) {
      const button = document.createElement(signedIn ? "button" : "a");
      button.className = "button";
      button.textContent = `Choose ${plan.name}`;
      if (signedIn) {
        button.type = "button";
        button.addEventListener("click", () => goTo("/api/billing/checkout", button, { plan: plan.id }));
      } else {
        button.href = "/signup?next=/billing";
      }
      card.append(button);
    }
    list.append(card);
  }
  list.removeAttribute("aria-busy");
}

function renderUsage(usage) {
  const minutes = $("#usage-minutes");
  const total = usage.limits.monthlyMinutes;
  const used = usage.minutesUsed;
  minutes.textContent = `${used.toFixed(1)} of ${total} minutes used this month (${usage.minutesLeft.toFixed(1)} left).`;
  const bar = $("#usage-bar");
  bar.max = total;
  bar.value = Math.min(used, total);
  bar.hidden = false;
  if (usage.renewsAt) {
    const renews = $("#usage-renews");
    renews.textContent = `Renews ${fullDate(usage.renewsAt)}.`;
    renews.hidden = false;
  }
}

api("/api/billing/plans")
  .then((body) => render(body.plans || []))
  .catch((err) => {
    list.replaceChildren();
    showMessage(errorBox, `Couldn't load the plans. ${err.message}`);
  });

if (signedIn) {
  api("/api/billing/usage").then(renderUsage).catch((err) => {
    $("#usage-minutes").textContent = `Couldn't load your usage. ${err.message}`;
  });
  const portal = $("#portal");
  if (portal) portal.addEventListener("click", () => goTo("/api/billing/portal", portal));
}
