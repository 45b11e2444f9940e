//! English for the layout, login, start page and error pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[
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
