/* idp — passkeys (WebAuthn): the one script idp serves, for the pages that ask the browser for a passkey.
   A form carries the options the server made (data-passkey-create or data-passkey-get, JSON with base64url
   fields); on submit this asks the browser, puts its answer (JSON, base64url) in the hidden "credential" field
   and submits the form as usual, CSRF token included. Without this script, or without WebAuthn in the browser,
   the page says what to do instead. */
(function () {
  "use strict";

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var copy = { type: d.type, id: toBytes(d.id) };
      if (d.transports) { copy.transports = d.transports; }
      return copy;
    });
  }

  function creationOptions(json) {
    var o = JSON.parse(json);
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    var o = JSON.parse(json);
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function registrationJSON(credential) {
    var r = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        attestationObject: toBase64url(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : []
      }
    };
  }

  function assertionJSON(credential) {
    var r = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        authenticatorData: toBase64url(r.authenticatorData),
        signature: toBase64url(r.signature),
        userHandle: r.userHandle ? toBase64url(r.userHandle) : undefined
      }
    };
  }

  function show(form, selector) {
    var element = form.querySelector(selector);
    if (element) { element.hidden = false; }
  }

  function hide(form, selector) {
    var element = form.querySelector(selector);
    if (element) { element.hidden = true; }
  }

  function wire(form, ask) {
    var button = form.querySelector("button[type=submit]");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(form, ".passkey-unsupported");
      if (button) { button.disabled = true; }
      return;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      hide(form, ".passkey-cancelled");
      if (button) { button.disabled = true; }
      ask().then(function (answer) {
        form.elements.credential.value = JSON.stringify(answer);
        form.submit();
      }, function () {
        // Cancelled, timed out, or no passkey here: nothing was sent; the person may try again.
        show(form, ".passkey-cancelled");
        if (button) { button.disabled = false; }
      });
    });
  }

  var add = document.getElementById("passkey-add");
  if (add) {
    wire(add, function () {
      return navigator.credentials.create({ publicKey: creationOptions(add.dataset.passkeyCreate) })
        .then(registrationJSON);
    });
  }
  // "Use a passkey" on the password-reset page: the form also carries the new password (and the code field),
  // so only its own button asks for the passkey; the form's usual submit still sends a code.
  var reset = document.querySelector("form[data-passkey-reset]");
  if (reset && window.PublicKeyCredential && navigator.credentials) {
    var resetButton = reset.querySelector("#passkey-reset-button");
    show(reset, ".passkey-reset");
    resetButton.addEventListener("click", function () {
      hide(reset, ".passkey-cancelled");
      resetButton.disabled = true;
      navigator.credentials.get({ publicKey: requestOptions(reset.dataset.passkeyReset) })
        .then(assertionJSON)
        .then(function (answer) {
          reset.elements.credential.value = JSON.stringify(answer);
          reset.submit();
        }, function () {
          show(reset, ".passkey-cancelled");
          resetButton.disabled = false;
        });
    });
  }
  // "Use a passkey" at the second step, and "Sign in with a passkey" on the sign-in page.
  Array.prototype.forEach.call(document.querySelectorAll("form[data-passkey-get]"), function (form) {
    wire(form, function () {
      return navigator.credentials.get({ publicKey: requestOptions(form.dataset.passkeyGet) })
        .then(assertionJSON);
    });
  });
}());
