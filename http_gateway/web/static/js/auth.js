// /signup and /login: the JSON auth API, errors shown inline next to the field they are about.
import { $, api, showMessage } from "./common.js";

const form = $("#auth-form");
const mode = form.dataset.mode;
const email = $("#email");
const password = $("#password");
const errors = { email: $("#email-error"), password: $("#password-error"), form: $("#form-error") };

function setError(field, message) {
  showMessage(errors[field], message);
  const input = field === "email" ? email : field === "password" ? password : null;
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function clearErrors() {
  for (const field of Object.keys(errors)) setError(field, "");
}

function fieldOf(status, message) {
  if (status === 409) return "email";
  if (status !== 400) return "form"; // 401 must not say which of the two was wrong; 429, 5xx
  if (/password/i.test(message)) return "password";
  return /email/i.test(message) ? "email" : "form";
}

for (const input of [email, password]) input.addEventListener("input", () => setError(input.id, ""));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  let bad = null;
  if (!email.value.trim() || !email.value.includes("@")) {
    setError("email", "Enter your email address, like name@example.com.");
    bad = bad || email;
  }
  if (!password.value) {
    setError("password", "Enter your password.");
    bad = bad || password;
  } else if (mode === "signup" && password.value.length < password.minLength) {
    // minlength is rendered from the server's MIN_PASSWORD_LENGTH (http_gateway/accounts.py)
    setError("password", `Use at least ${password.minLength} characters.`);
    bad = bad || password;
  }
  if (bad) { bad.focus(); return; }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    await api(`/api/auth/${mode}`, {
      method: "POST", json: { email: email.value.trim(), password: password.value }, ctx: { login: mode === "login" },
    });
    window.location.assign(form.dataset.next || "/");
  } catch (err) {
    let message = err.message;
    if (err.status === 409) message = "An account with this email already exists. Log in instead?";
    const field = fieldOf(err.status, message);
    setError(field, message);
    (field === "email" ? email : field === "password" ? password : button).focus();
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
});
