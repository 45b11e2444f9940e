//! English for the layout, login, start page and error pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[
    ("Seite nicht gefunden", "Page not found"),
    (
        "Diese Seite gibt es nicht. Bitte prüfen Sie die Adresse.",
        "This page does not exist. Please check the address.",
    ),
    ("Aufruf nicht möglich", "Not possible this way"),
    (
        "Diese Seite kann so nicht aufgerufen werden. Bitte nutzen Sie die Links und Schaltflächen der Seiten.",
        "This page cannot be called like this. Please use the links and buttons on the pages.",
    ),
    (
        "Sie haben keinen Zugriff auf diese Seite.",
        "You have no access to this page.",
    ),
    ("Nicht mehr verfügbar", "No longer available"),
    (
        "Diese Seite ist nicht mehr verfügbar.",
        "This page is no longer available.",
    ),
    ("Anfrage zu groß", "Request too large"),
    (
        "Die gesendeten Daten sind zu umfangreich.",
        "The data sent is too large.",
    ),
    ("Vorübergehend nicht verfügbar", "Temporarily unavailable"),
    (
        "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut.",
        "The service cannot be reached right now. Please try again in a few minutes.",
    ),
    ("Interner Fehler", "Internal error"),
    (
        "Bei der Bearbeitung ist ein Fehler aufgetreten. Bitte versuchen Sie es später erneut.",
        "Something went wrong while handling this. Please try again later.",
    ),
    ("Ungültige Anfrage", "Invalid request"),
    (
        "Die Anfrage oder das Formular war unvollständig oder fehlerhaft. Bitte laden Sie die Seite neu und versuchen Sie es erneut.",
        "The request or the form was incomplete or wrong. Please reload the page and try again.",
    ),
    ("Abmelden", "Log out"),
    ("Anmelden", "Log in"),
    ("Start", "Home"),
    ("Zum Inhalt springen", "Skip to content"),
    ("Hauptnavigation", "Main navigation"),
    ("Angemeldet als", "Logged in as"),
    ("Guten Tag", "Hello"),
    ("Sie sind angemeldet als", "You are logged in as"),
    (
        "Vertrauliche Nachrichten öffnen Sie über den Link im Hinweis, den Sie per E-Mail erhalten haben.",
        "Confidential messages open from the link in the notice you received by e-mail.",
    ),
    (
        "Benutzername oder E-Mail-Adresse",
        "User name or e-mail address",
    ),
    ("Passwort", "Password"),
    ("Zur Startseite", "Back to the start page"),
    ("Geräte", "Devices"),
    ("Anmeldungen", "Logins"),
    ("Weiterleitung", "Forwarding"),
    ("Zurückgehaltene Nachrichten", "Held messages"),
    ("Freigaben", "Approvals"),
    ("Ausnahmen", "Exemptions"),
    ("Benutzer", "Users"),
    ("Warteschlange", "Queue"),
    ("Nachrichten", "Messages"),
    ("Protokoll", "Audit trail"),
    ("Verzeichnis", "Register"),
    ("Kennzahlen", "Figures"),
    ("Mitarbeiterin/Mitarbeiter", "Staff"),
    ("Administration", "Administration"),
    ("Datenschutz", "Data protection"),
    ("Keine Berechtigung", "Not permitted"),
    (
        "Diese Seite ist Ihrer Rolle nicht zugänglich.",
        "Your role does not give access to this page.",
    ),
    (
        "Das Formular war abgelaufen. Bitte melden Sie sich erneut an.",
        "The form had expired. Please log in again.",
    ),
    (
        "Benutzername oder Passwort ist falsch.",
        "The user name or password is wrong.",
    ),
    ("Formular ungültig", "Form not valid"),
    (
        "Das Formular war ungültig oder abgelaufen. Bitte laden Sie die Seite neu.",
        "The form was not valid or has expired. Please reload the page.",
    ),
];
