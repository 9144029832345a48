// The "Copy" button beside the setup key: shown only where it can work (progressive enhancement; the key stays
// readable and selectable without it). Copies the key without the spaces that group it for reading.
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) {
    return;
  }
  var label = button.textContent;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(source.textContent.replace(/\s+/g, "")).then(function () {
      button.textContent = button.getAttribute("data-copied");
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  });
});
