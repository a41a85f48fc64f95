// Latchkey's passkey script: the only script of the site, loaded by the pages with
// passkey parts (sign-in, the code page, security). No framework, no inline code
// (the pages' policy is `script-src 'self'`). It finds each `[data-passkey]` box,
// says why passkeys are unavailable when this browser has no WebAuthn (the no-script
// text is in the HTML; this script hides it), and drives the JSON endpoints:
//   add            POST /account/passkeys/options, create(), POST /account/passkeys
//   sign-in        POST /login/passkey/options, get(), POST /login/passkey
//                  (the button, and the browser's autofill: conditional mediation)
//   second-factor  the same with {"second_factor": true}
// The endpoints speak the WebAuthn Level 3 JSON forms (base64url for binary fields);
// this file turns them into the ArrayBuffers the browser API takes, and back.
"use strict";

(function () {
  function b64urlToBuffer(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const bin = atob(padded);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: b64urlToBuffer(d.id) });
    });
  }

  function creationOptions(json) {
    const o = Object.assign({}, json.publicKey);
    o.challenge = b64urlToBuffer(o.challenge);
    o.user = Object.assign({}, o.user, { id: b64urlToBuffer(o.user.id) });
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    const o = Object.assign({}, json.publicKey);
    o.challenge = b64urlToBuffer(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function extensionResults(cred) {
    try {
      return cred.getClientExtensionResults() || {};
    } catch (e) {
      return {};
    }
  }

  function registrationJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: bufferToB64url(r.attestationObject),
        clientDataJSON: bufferToB64url(r.clientDataJSON),
        transports: typeof r.getTransports === "function" ? r.getTransports() : [],
      },
      clientExtensionResults: extensionResults(cred),
    };
  }

  function authenticationJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: bufferToB64url(r.authenticatorData),
        clientDataJSON: bufferToB64url(r.clientDataJSON),
        signature: bufferToB64url(r.signature),
        userHandle: r.userHandle ? bufferToB64url(r.userHandle) : null,
      },
      clientExtensionResults: extensionResults(cred),
    };
  }

  async function post(box, url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try {
      data = await res.json();
    } catch (e) {
      data = { error: "The server could not answer. Please try again." };
    }
    return { status: res.status, ok: res.ok, data: data };
  }

  function say(box, text) {
    const status = box.querySelector("[data-passkey-status]");
    if (status) status.textContent = text;
  }

  // Why a browser call failed, in words (the user closing the dialog is not an error).
  function browserError(e) {
    if (e && e.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
    if (e && e.name === "InvalidStateError") return "This authenticator already holds a passkey for your account.";
    if (e && e.name === "AbortError") return "";
    return "Your browser could not use a passkey" + (e && e.message ? ": " + e.message : ".");
  }

  function setUp(box) {
    const note = box.querySelector("[data-passkey-note]");
    const supported = typeof window.PublicKeyCredential === "function" &&
      navigator.credentials && typeof navigator.credentials.create === "function";
    if (!supported) {
      if (note) note.textContent = "This browser cannot use passkeys. Use your password instead.";
      return;
    }
    if (note) note.hidden = true;
    const kind = box.dataset.passkey;
    if (kind === "add") addPasskey(box);
    if (kind === "sign-in") signIn(box, false);
    if (kind === "second-factor") signIn(box, true);
  }

  function addPasskey(box) {
    const button = document.getElementById("passkey-add");
    if (!button) return;
    const reauth = box.querySelector("[data-passkey-reauth]");
    const nameField = box.querySelector("[data-passkey-name]");
    const password = document.getElementById("passkey-password");
    const name = document.getElementById("passkey-name");
    if (nameField) nameField.hidden = false;
    button.hidden = false;
    button.addEventListener("click", async function () {
      button.disabled = true;
      say(box, "Follow your browser's prompt to make the passkey…");
      try {
        const options = await post(box, "/account/passkeys/options", {
          current_password: password ? password.value : "",
        });
        if (!options.ok) {
          if (options.data.reauth && reauth) {
            reauth.hidden = false;
            password.focus();
          }
          say(box, options.data.error || "The passkey could not be added.");
          return;
        }
        const cred = await navigator.credentials.create({ publicKey: creationOptions(options.data) });
        const added = await post(box, "/account/passkeys", {
          credential: registrationJSON(cred),
          name: name ? name.value : "",
        });
        if (!added.ok) {
          say(box, added.data.error || "The passkey could not be added.");
          return;
        }
        say(box, "Passkey \u201c" + added.data.name + "\u201d added.");
        window.location.reload();
      } catch (e) {
        say(box, browserError(e));
      } finally {
        button.disabled = false;
      }
    });
  }

  function signIn(box, secondFactor) {
    const button = document.getElementById(secondFactor ? "passkey-second-factor" : "passkey-sign-in");
    if (!button) return;
    button.hidden = false;
    let pending = null; // the AbortController of the autofill request, while it waits

    async function finish(cred) {
      const remember = document.getElementById("remember");
      const body = {
        credential: authenticationJSON(cred),
        second_factor: secondFactor,
        remember: !!(remember && remember.checked),
      };
      if (box.dataset.rd) body.rd = box.dataset.rd;
      const done = await post(box, box.dataset.finish, body);
      if (done.ok && done.data.redirect) {
        window.location.assign(done.data.redirect);
        return;
      }
      say(box, done.data.error || "That passkey was not accepted.");
    }

    async function ask(conditional) {
      const options = await post(box, "/login/passkey/options", { second_factor: secondFactor });
      if (!options.ok) {
        say(box, options.data.error || "Passkeys are unavailable right now.");
        return null;
      }
      const request = { publicKey: requestOptions(options.data) };
      if (conditional) {
        pending = new AbortController();
        request.mediation = "conditional";
        request.signal = pending.signal;
      }
      return navigator.credentials.get(request);
    }

    button.addEventListener("click", async function () {
      // A pending autofill request must end first, or the browser answers that a
      // request is already pending.
      if (pending) {
        pending.abort();
        pending = null;
      }
      button.disabled = true;
      say(box, "Follow your browser's prompt to use your passkey…");
      try {
        const cred = await ask(false);
        if (cred) await finish(cred);
      } catch (e) {
        say(box, browserError(e));
      } finally {
        button.disabled = false;
      }
    });

    // The browser's passkey autofill on the email field (sign-in page only).
    if (!secondFactor && typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then(async function (available) {
        if (!available) return;
        try {
          const cred = await ask(true);
          pending = null;
          if (cred) await finish(cred);
        } catch (e) {
          const why = browserError(e);
          if (why && e.name !== "NotAllowedError") say(box, why);
        }
      });
    }
  }

  document.querySelectorAll("[data-passkey]").forEach(setUp);
})();
