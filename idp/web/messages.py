"""The messages pages show for errors, marked for translation (shown through `_()` in the templates)."""

from __future__ import annotations

from idp.i18n import N_

GENERIC_FAILURE = N_("The email or password is incorrect.")
WRONG_CODE = N_("That code is not valid. Check it and try again.")
FORM_UNREADABLE = N_("The form could not be read. Reload the page and try again.")
SETUP_EXPIRED = N_("The setup expired. Scan this new QR code.")
ALREADY_OFF = N_("Two-step verification is already off.")
IS_OFF = N_("Two-step verification is off.")
BAD_REQUEST = N_("Bad request")
FORM_EXPIRED = N_("Your form has expired")
FORM_EXPIRED_TEXT = N_(
    "The form was missing its security token or it did not match. Go back, reload the page and try again."
)
BUSY = N_("Busy")
BUSY_TEXT = N_("Too many people are signing in right now. Please try again in a moment.")
NOT_FOUND = N_("Page not found")
NOT_FOUND_TEXT = N_("There is nothing here.")
NOT_ALLOWED = N_("Method not allowed")
NOT_ALLOWED_TEXT = N_("This request is not allowed here.")
ERROR = N_("Error")
NO_CODES = N_("No codes to show")
# The first line of the downloaded backup codes file.
DOWNLOAD_TITLE = N_("Backup codes for %(email)s (%(site)s)")
NO_CODES_TEXT = N_("Backup codes can only be downloaded or printed right after they are made.")
BAD_SIGN_IN_LINK = N_("This sign-in link is not valid")
BAD_SIGN_OUT_LINK = N_("This sign-out link is not valid")
NO_SUCH_SESSION = N_("Session not found")
NO_SUCH_SESSION_TEXT = N_("That session has already ended, or it is not one of yours.")
# The support console (/admin).
STAFF_ONLY = N_("Staff only")
STAFF_ONLY_TEXT = N_("This part of the service is for support staff. Your account does not have access to it.")
NO_SUCH_PERSON = N_("Person not found")
NO_SUCH_PERSON_TEXT = N_("There is no account with this id.")
NO_SUCH_CLIENT = N_("Job board not found")
NO_SUCH_CLIENT_TEXT = N_("There is no client with this id.")
