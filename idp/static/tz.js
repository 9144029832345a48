// Tells idp the browser's time zone (an IANA name such as Europe/Oslo), so times are shown in it from the next
// page on. Without script, or in an old browser, idp shows times in UTC and says so.
"use strict";
(function () {
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone || !/^[A-Za-z][A-Za-z0-9_+\-\/]{0,63}$/.test(zone)) {
    return;
  }
  var secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "idp_tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax" + secure;
})();
