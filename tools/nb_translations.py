# ruff: noqa: E501 - a table of sentences reads best one pair per line
"""Norwegian Bokmål catalog source: run to (re)write idp/locales/nb/LC_MESSAGES/messages.po from the .pot.

Kept as a table here so a reviewer can read English and Bokmål side by side; the .po file is what idp loads.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
NB: dict[str | tuple[str, str], str | tuple[str, str]] = {
    "The email or password is incorrect.": "E-postadressen eller passordet er feil.",
    "That code is not valid. Check it and try again.": "Koden er ikke gyldig. Sjekk den og prøv igjen.",
    "The form could not be read. Reload the page and try again.": "Skjemaet kunne ikke leses. Last inn siden på nytt og prøv igjen.",
    "The setup expired. Scan this new QR code.": "Oppsettet gikk ut på tid. Skann denne nye QR-koden.",
    "Two-step verification is already off.": "Totrinnsbekreftelse er allerede slått av.",
    "Two-step verification is off.": "Totrinnsbekreftelse er slått av.",
    "Bad request": "Ugyldig forespørsel",
    "Your form has expired": "Skjemaet er utløpt",
    "The form was missing its security token or it did not match. Go back, reload the page and try again.": "Skjemaet manglet sikkerhetsnøkkelen, eller den stemte ikke. Gå tilbake, last inn siden på nytt og prøv igjen.",
    "Busy": "Travelt",
    "Too many people are signing in right now. Please try again in a moment.": "Akkurat nå logger svært mange seg inn. Prøv igjen om litt.",
    "Page not found": "Fant ikke siden",
    "There is nothing here.": "Det finnes ingenting her.",
    "Method not allowed": "Metoden er ikke tillatt",
    "This request is not allowed here.": "Denne forespørselen er ikke tillatt her.",
    "Error": "Feil",
    "No codes to show": "Ingen koder å vise",
    "Backup codes for %(email)s (%(site)s)": "Reservekoder for %(email)s (%(site)s)",
    "Backup codes can only be downloaded or printed right after they are made.": "Reservekoder kan bare lastes ned eller skrives ut rett etter at de er laget.",
    "This sign-in link is not valid": "Denne innloggingslenken er ikke gyldig",
    "This sign-out link is not valid": "Denne utloggingslenken er ikke gyldig",
    "The request repeats client_id.": "Forespørselen gjentar client_id.",
    "The request has no client_id.": "Forespørselen mangler client_id.",
    "The application that sent you here is not registered with this sign-in service.": "Tjenesten som sendte deg hit, er ikke registrert hos denne innloggingstjenesten.",
    "The address to return to is not registered for this application.": "Adressen du skulle sendes tilbake til, er ikke registrert for denne tjenesten.",
    "The request must be a form post (application/x-www-form-urlencoded).": "Forespørselen må sendes som et skjema (application/x-www-form-urlencoded).",
    "The request is not valid UTF-8 URL-encoded data.": "Forespørselen er ikke gyldige UTF-8 URL-kodede data.",
    "The sign-out request carries an ID token that was not issued here.": "Utloggingsforespørselen har en ID-token som ikke er utstedt her.",
    "The sign-out request carries an ID token from another issuer.": "Utloggingsforespørselen har en ID-token fra en annen utsteder.",
    "The ID token was issued to another application.": "ID-tokenet ble utstedt til en annen tjeneste.",
    "The application that sent you here is not registered.": "Tjenesten som sendte deg hit, er ikke registrert.",
    "The address to return to after signing out is not registered for this application.": "Adressen du skulle sendes til etter utlogging, er ikke registrert for denne tjenesten.",
    "One sign-in for all the job sites you use.": "Én innlogging for alle jobbnettstedene du bruker.",
    "Language": "Språk",
    "Your backup codes": "Reservekodene dine",
    "Save your backup codes": "Lagre reservekodene dine",
    "Two-step verification is on.": "Totrinnsbekreftelse er slått på.",
    "If you lose your phone, you can sign in with one of these codes. Each code works once. Keep them somewhere safe: they are shown only now.": "Hvis du mister telefonen, kan du logge inn med en av disse kodene. Hver kode virker én gang. Oppbevar dem et trygt sted: de vises bare nå.",
    "Backup codes": "Reservekoder",
    "Download codes": "Last ned kodene",
    "Print codes": "Skriv ut kodene",
    "Continue": "Fortsett",
    "Done": "Ferdig",
    "Each code works once. Use your browser's Print command to print this page.": "Hver kode virker én gang. Bruk nettleserens utskriftskommando for å skrive ut denne siden.",
    "Back": "Tilbake",
    "Your account": "Kontoen din",
    "Email": "E-post",
    "Name": "Navn",
    "Signed in": "Logget inn",
    "Security": "Sikkerhet",
    "Two-step verification": "Totrinnsbekreftelse",
    "Sign out": "Logg ut",
    "Two-step verification is off. You were signed out everywhere else.": "Totrinnsbekreftelse er slått av. Du ble logget ut alle andre steder.",
    "On since %(date)s": "På siden %(date)s",
    ("%(count)s backup code left", "%(count)s backup codes left"): (
        "%(count)s reservekode igjen",
        "%(count)s reservekoder igjen",
    ),
    "You are running out of backup codes. Generate new ones below.": "Du har snart brukt opp reservekodene. Lag nye nedenfor.",
    "Generate new backup codes": "Lag nye reservekoder",
    "Your old backup codes stop working.": "De gamle reservekodene slutter å virke.",
    "Code from your app, or a backup code": "Kode fra appen, eller en reservekode",
    "Turn off two-step verification": "Slå av totrinnsbekreftelse",
    "Your account will be protected by your password only, and you will be signed out everywhere else.": "Kontoen din blir bare beskyttet av passordet, og du blir logget ut alle andre steder.",
    "Disable": "Slå av",
    "Off": "Av",
    "Protect your account with a code from an authenticator app on your phone, in addition to your password.": "Beskytt kontoen din med en kode fra en autentiseringsapp på telefonen, i tillegg til passordet.",
    "Enable two-step verification": "Slå på totrinnsbekreftelse",
    "Set up two-step verification": "Sett opp totrinnsbekreftelse",
    "Install an authenticator app on your phone, for example Microsoft Authenticator or Google Authenticator.": "Installer en autentiseringsapp på telefonen, for eksempel Microsoft Authenticator eller Google Authenticator.",
    "In the app, add an account and scan this QR code.": "Legg til en konto i appen og skann denne QR-koden.",
    "QR code for your authenticator app": "QR-kode for autentiseringsappen",
    "Can't scan it? Enter this setup key in the app instead:": "Får du ikke skannet den? Skriv inn denne oppsettsnøkkelen i appen i stedet:",
    "Enter the 6-digit code the app shows.": "Skriv inn den sekssifrede koden appen viser.",
    "Code from your app": "Kode fra appen",
    "Turn on": "Slå på",
    "Cancel": "Avbryt",
    "Allow access": "Gi tilgang",
    "%(name)s wants to use your account": "%(name)s vil bruke kontoen din",
    "You are signed in as %(email)s.": "Du er logget inn som %(email)s.",
    "It will be able to:": "Tjenesten vil kunne:",
    "Know who you are (a stable, anonymous identifier)": "Vite hvem du er (en fast, anonym identifikator)",
    "See your email address": "Se e-postadressen din",
    "See your name": "Se navnet ditt",
    "Stay signed in when you are away": "Holde deg innlogget når du ikke er til stede",
    "Allow": "Tillat",
    "Deny": "Avslå",
    "%(name)s asks to sign you out.": "%(name)s ber om å logge deg ut.",
    "Do you want to sign out of this sign-in service?": "Vil du logge ut av denne innloggingstjenesten?",
    "These job sites will be signed out too:": "Disse jobbnettstedene blir også logget ut:",
    "These job sites are told to sign you out too:": "Disse jobbnettstedene får beskjed om å logge deg ut også:",
    "These job sites keep you signed in until you sign out there:": "Disse jobbnettstedene holder deg innlogget til du logger ut der:",
    "Signed out": "Logget ut",
    "You are signed out": "Du er logget ut",
    "You can close this window, or sign in again.": "Du kan lukke dette vinduet, eller logge inn igjen.",
    "Sign in": "Logg inn",
    "Password": "Passord",
    "You are not signed in.": "Du er ikke logget inn.",
    "Too many attempts": "For mange forsøk",
    (
        "Signing in has been paused after too many failed attempts. Please try again in %(count)s minute.",
        "Signing in has been paused after too many failed attempts. Please try again in %(count)s minutes.",
    ): (
        "Innlogging er satt på pause etter for mange mislykkede forsøk. Prøv igjen om %(count)s minutt.",
        "Innlogging er satt på pause etter for mange mislykkede forsøk. Prøv igjen om %(count)s minutter.",
    ),
    "If you have forgotten your password, contact the support of the job site you came from.": "Har du glemt passordet, kan du kontakte kundeservice hos jobbnettstedet du kom fra.",
    "Back to sign-in": "Tilbake til innlogging",
    "Use a backup code": "Bruk en reservekode",
    "Lost your phone? Enter one of the backup codes you saved when you turned on two-step verification. Each code works once.": "Mistet telefonen? Skriv inn en av reservekodene du lagret da du slo på totrinnsbekreftelse. Hver kode virker én gang.",
    "Backup code": "Reservekode",
    "Verify": "Bekreft",
    "Use the code from your app instead": "Bruk koden fra appen i stedet",
    "Signed in with a backup code": "Logget inn med en reservekode",
    ("You have %(count)s backup code left.", "You have %(count)s backup codes left."): (
        "Du har %(count)s reservekode igjen.",
        "Du har %(count)s reservekoder igjen.",
    ),
    "You are running out of backup codes. Generate new ones on your security page, and save them somewhere safe.": "Du har snart brukt opp reservekodene. Lag nye på sikkerhetssiden, og lagre dem et trygt sted.",
    "Manage two-step verification": "Administrer totrinnsbekreftelse",
    "Open your authenticator app (for example Microsoft Authenticator or Google Authenticator) and enter the 6-digit code it shows.": "Åpne autentiseringsappen (for eksempel Microsoft Authenticator eller Google Authenticator) og skriv inn den sekssifrede koden den viser.",
    "Use a backup code instead": "Bruk en reservekode i stedet",
    "Session not found": "Fant ikke økten",
    "That session has already ended, or it is not one of yours.": "Den økten er allerede avsluttet, eller den er ikke din.",
    "Where you are signed in": "Der du er logget inn",
    "That session is signed out.": "Den økten er logget ut.",
    "You are signed out everywhere else.": "Du er logget ut alle andre steder.",
    "A job board that signed in through a session you sign out can no longer renew that sign-in, unless you let it keep you signed in when you are away.": "En jobbside som logget inn gjennom en økt du logger ut, kan ikke lenger fornye den innloggingen, med mindre du har latt den holde deg innlogget mens du er borte.",
    "%(browser)s on %(system)s": "%(browser)s på %(system)s",
    "Unknown browser": "Ukjent nettleser",
    "This browser": "Denne nettleseren",
    "Address": "Adresse",
    "unknown": "ukjent",
    "Last used": "Sist brukt",
    "How": "Hvordan",
    "Password and authenticator app": "Passord og autentiseringsapp",
    "Password and backup code": "Passord og reservekode",
    "Job boards": "Jobbsider",
    "None": "Ingen",
    "Sign out of this browser": "Logg ut av denne nettleseren",
    "Sign out everywhere else": "Logg ut alle andre steder",
    "Confirm your email address for %(site)s": "Bekreft e-postadressen din for %(site)s",
    "Someone tried to create an account with your address at %(site)s": "Noen prøvde å opprette en konto med adressen din hos %(site)s",
    "Reset your password at %(site)s": "Tilbakestill passordet ditt hos %(site)s",
    "Your password at %(site)s was changed": "Passordet ditt hos %(site)s ble endret",
    "This email was sent by %(site)s because of something done with your account. You cannot reply to it.": "Denne e-posten ble sendt av %(site)s fordi noe ble gjort med kontoen din. Du kan ikke svare på den.",
    "Confirm that this is your email address for %(site)s by opening this link:": "Bekreft at dette er e-postadressen din for %(site)s ved å åpne denne lenken:",
    "Confirm my email address": "Bekreft e-postadressen min",
    "The link works once, for 24 hours. If you did not create an account, ignore this email: nothing happens without the link.": "Lenken virker én gang, i 24 timer. Hvis du ikke opprettet en konto, kan du se bort fra denne e-posten: ingenting skjer uten lenken.",
    "Someone tried to create an account at %(site)s with this email address, but you already have one. No new account was made.": "Noen prøvde å opprette en konto hos %(site)s med denne e-postadressen, men du har allerede en. Ingen ny konto ble laget.",
    "If it was you, sign in here:": "Hvis det var deg, logg inn her:",
    "Forgot your password? Choose a new one here:": "Glemt passordet? Velg et nytt her:",
    "If it was not you, you need not do anything.": "Hvis det ikke var deg, trenger du ikke gjøre noe.",
    "Someone asked to reset the password of your account at %(site)s. To choose a new password, open this link:": "Noen ba om å tilbakestille passordet til kontoen din hos %(site)s. Åpne denne lenken for å velge et nytt passord:",
    "Choose a new password": "Velg et nytt passord",
    "The link works once, for 30 minutes. If you use two-step verification, you will be asked for a code as well. If you did not ask for this, ignore this email: your password stays as it is.": "Lenken virker én gang, i 30 minutter. Hvis du bruker totrinnsbekreftelse, blir du også bedt om en kode. Hvis du ikke ba om dette, kan du se bort fra denne e-posten: passordet ditt forblir som det er.",
    "The password of your account at %(site)s was just changed, and you were signed out everywhere else.": "Passordet til kontoen din hos %(site)s ble nettopp endret, og du ble logget ut alle andre steder.",
    "If you did this, you need not do anything. If you did not, choose a new password at once:": "Hvis det var deg, trenger du ikke gjøre noe. Hvis ikke, velg et nytt passord med en gang:",
    "You can also contact support:": "Du kan også kontakte brukerstøtte:",
    "Choose a password of at least %(min)s characters.": "Velg et passord på minst %(min)s tegn.",
    "Choose a password of at most %(max)s characters.": "Velg et passord på høyst %(max)s tegn.",
    "Choose a password that does not contain your email address.": "Velg et passord som ikke inneholder e-postadressen din.",
    "This password is too common or too easy to guess. Try a few unrelated words together.": "Dette passordet er for vanlig eller for lett å gjette. Prøv noen ord som ikke hører sammen.",
    "Not available": "Ikke tilgjengelig",
    "Resetting a password by email is not available on this service. Contact support for help.": "Tilbakestilling av passord via e-post er ikke tilgjengelig her. Kontakt brukerstøtte for hjelp.",
    "This link does not work": "Denne lenken virker ikke",
    "The link has already been used, has expired, or was copied incompletely. Ask for a new one and use the newest.": "Lenken er allerede brukt, har gått ut på tid eller ble ikke kopiert helt. Be om en ny og bruk den nyeste.",
    "Enter a code from your authenticator app or one of your backup codes.": "Skriv inn en kode fra autentiseringsappen eller en av reservekodene dine.",
    "Enter your email address.": "Skriv inn e-postadressen din.",
    "Forgot your password?": "Glemt passordet?",
    "Enter the email address of your account. We will send you a link to choose a new password.": "Skriv inn e-postadressen til kontoen din. Vi sender deg en lenke for å velge et nytt passord.",
    "Send the link": "Send lenken",
    "Back to sign in": "Tilbake til innlogging",
    "Check your email": "Sjekk e-posten din",
    "If an account exists for %(email)s, we have sent it a link to choose a new password. The link works once, for 30 minutes.": "Hvis det finnes en konto for %(email)s, har vi sendt den en lenke for å velge et nytt passord. Lenken virker én gang, i 30 minutter.",
    "Nothing arrived after a few minutes? Look in your spam folder, check the address, or ask for a new link.": "Kom det ingenting etter noen minutter? Se i søppelpostmappen, sjekk adressen eller be om en ny lenke.",
    "Ask for a new link": "Be om en ny lenke",
    "New password": "Nytt passord",
    "At least 8 characters. A few unrelated words make a strong password that is easy to remember.": "Minst 8 tegn. Noen ord som ikke hører sammen, gir et sterkt passord som er lett å huske.",
    "Code from your authenticator app, or a backup code": "Kode fra autentiseringsappen, eller en reservekode",
    "Your account has two-step verification, so resetting the password needs a code as well.": "Kontoen din har totrinnsbekreftelse, så du trenger også en kode for å tilbakestille passordet.",
    "Save the new password": "Lagre det nye passordet",
    "Lost your phone and your backup codes? Contact support": "Mistet telefonen og reservekodene? Kontakt brukerstøtte",
    "Your password was changed": "Passordet ditt er endret",
    "You have been signed out everywhere. Sign in with your new password.": "Du er logget ut overalt. Logg inn med det nye passordet.",
    "Ask for a new password link": "Be om en ny passordlenke",
    "Ask for a new confirmation link": "Be om en ny bekreftelseslenke",
}


def main() -> None:
    with (ROOT / "idp/locales/messages.pot").open("rb") as handle:
        template = read_po(handle)
    catalog = Catalog(locale="nb", project="idp", fuzzy=False)
    missing = []
    for message in template:
        if not message.id:
            continue
        translation = NB.get(message.id)
        if translation is None:
            missing.append(message.id)
            continue
        catalog.add(message.id, translation)
    target = ROOT / "idp/locales/nb/LC_MESSAGES/messages.po"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        write_po(handle, catalog, omit_header=False, no_location=True, width=120)
    if missing:
        raise SystemExit(f"{len(missing)} messages have no Bokmål translation: {missing[:3]}")


if __name__ == "__main__":
    main()
