//! English for the accounts (devices, logins, sessions) pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[
    // Devices
    (
        "Jedes Telefon, Tablet oder jeder Computer, mit dem Sie Ihre E-Mails lesen, bekommt ein eigenes App-Passwort. Geht ein Gerät verloren, sperren Sie nur dieses.",
        "Every phone, tablet or computer you read your mail with gets its own app password. If a device is lost, you block that one alone.",
    ),
    ("Ihre Geräte", "Your devices"),
    (
        "Sie haben noch kein Gerät eingerichtet.",
        "You have not set up a device yet.",
    ),
    ("Gerät", "Device"),
    ("Angelegt", "Created"),
    ("Zuletzt verwendet", "Last used"),
    ("Letzte Adresse", "Last address"),
    ("Aktion", "Action"),
    ("Sperren", "Block"),
    ("noch nie", "never"),
    ("Neues Gerät einrichten", "Set up a new device"),
    (
        "Name des Geräts (z. B. „iPhone dienstlich“)",
        "Name of the device (e.g. “work iPhone”)",
    ),
    ("App-Passwort erzeugen", "Create app password"),
    (
        "Das Gerät wurde gesperrt; sein App-Passwort gilt nicht mehr.",
        "The device was blocked; its app password no longer works.",
    ),
    (
        "Bitte geben Sie dem Gerät einen Namen mit 1 bis 100 Zeichen.",
        "Please give the device a name of 1 to 100 characters.",
    ),
    (
        "Ein Gerät mit diesem Namen gibt es schon. Wählen Sie einen anderen Namen oder sperren Sie das alte Gerät zuerst.",
        "A device with this name exists already. Choose another name or block the old device first.",
    ),
    (
        "Dieses Gerät gibt es nicht (mehr).",
        "This device does not exist (any more).",
    ),
    ("Profil nicht möglich", "No profile possible"),
    (
        "Das Profil gibt es nur direkt nach dem Anlegen eines Geräts. Legen Sie das Gerät bitte neu an.",
        "The profile is only available right after a device is created. Please create the device again.",
    ),
    // The new device
    ("Gerät eingerichtet", "Device set up"),
    (
        "Notieren oder kopieren Sie das App-Passwort jetzt: Es wird nur dieses eine Mal angezeigt.",
        "Write down or copy the app password now: it is shown only this once.",
    ),
    ("App-Passwort", "App password"),
    (
        "Zugangsdaten für Ihr E-Mail-Programm",
        "Settings for your mail program",
    ),
    ("Kontotyp", "Account type"),
    ("Server (Posteingang)", "Server (incoming mail)"),
    ("Port und Sicherheit", "Port and security"),
    ("empfohlen", "recommended"),
    ("Benutzername", "User name"),
    ("das App-Passwort oben", "the app password above"),
    ("Postausgang (SMTP)", "Outgoing mail (SMTP)"),
    (
        "gleicher Benutzername und gleiches Passwort",
        "same user name and password",
    ),
    (
        "Das Versenden über ratspost ist noch nicht eingerichtet. Lassen Sie den Postausgang so, wie Ihre Verwaltung ihn vorgibt, oder leer, wenn das Programm es erlaubt.",
        "Sending through ratspost is not available yet. Leave the outgoing server as your administration specifies it, or empty if the program allows it.",
    ),
    ("Einrichtung Schritt für Schritt", "Setup step by step"),
    ("iPhone und iPad", "iPhone and iPad"),
    (
        "Am einfachsten mit dem Profil: Öffnen Sie diese Seite auf dem Gerät, laden Sie das Profil und installieren Sie es unter Einstellungen → Allgemein → VPN und Geräteverwaltung.",
        "Easiest with the profile: open this page on the device, download the profile and install it under Settings → General → VPN & Device Management.",
    ),
    (
        "Profil für iPhone, iPad und Mac laden",
        "Download the profile for iPhone, iPad and Mac",
    ),
    (
        "Von Hand: Einstellungen → Apps → Mail → Mail-Accounts → Account hinzufügen → Andere → Mail-Account hinzufügen. Wählen Sie IMAP und tragen Sie die Zugangsdaten oben ein.",
        "By hand: Settings → Apps → Mail → Mail Accounts → Add Account → Other → Add Mail Account. Choose IMAP and enter the settings above.",
    ),
    ("Android", "Android"),
    (
        "In Gmail oder Ihrer E-Mail-App: Konto hinzufügen → Andere → Privat (IMAP). Geben Sie Ihre E-Mail-Adresse ein, dann „Manuelle Einrichtung“, und tragen Sie die Zugangsdaten oben ein (Sicherheitstyp SSL/TLS, Port wie oben).",
        "In Gmail or your mail app: Add account → Other → Personal (IMAP). Enter your e-mail address, then “Manual setup”, and enter the settings above (security type SSL/TLS, port as above).",
    ),
    ("Thunderbird", "Thunderbird"),
    ("Versand", "sending"),
    (
        "Konten-Einstellungen → Konto hinzufügen → E-Mail-Konto. Geben Sie Name, E-Mail-Adresse und das App-Passwort ein: Thunderbird findet Posteingang und Postausgang selbst. Ihre gesendeten Nachrichten legt Thunderbird im Ordner „Gesendet“ ab.",
        "Account settings → Add account → Email account. Enter your name, email address and the app password: Thunderbird finds the incoming and outgoing servers itself. Thunderbird keeps your sent messages in the “Sent” folder.",
    ),
    (
        "Konten-Einstellungen → Konto hinzufügen → E-Mail-Konto. Geben Sie Name, E-Mail-Adresse und das App-Passwort ein, wählen Sie „Manuell einrichten“ und tragen Sie die Zugangsdaten oben ein.",
        "Account settings → Add account → Email account. Enter your name, email address and the app password, choose “Configure manually” and enter the details above.",
    ),
    ("Outlook", "Outlook"),
    (
        "Datei → Konto hinzufügen → Erweiterte Optionen → „Ich möchte mein Konto manuell einrichten“ → IMAP. Tragen Sie die Zugangsdaten oben ein (Verschlüsselungsmethode SSL/TLS).",
        "File → Add Account → Advanced options → “Let me set up my account manually” → IMAP. Enter the settings above (encryption method SSL/TLS).",
    ),
    ("macOS Mail", "macOS Mail"),
    (
        "Laden Sie das Profil oben auf dem Mac und öffnen Sie es unter Systemeinstellungen → Datenschutz & Sicherheit → Profile. Von Hand: Mail → Account hinzufügen → Anderer Mail-Account, dann die Zugangsdaten oben.",
        "Download the profile above on the Mac and open it under System Settings → Privacy & Security → Profiles. By hand: Mail → Add Account → Other Mail Account, then the settings above.",
    ),
    ("Zurück zu Ihren Geräten", "Back to your devices"),
    // Logins and sessions
    (
        "Ihre offenen Sitzungen im Browser",
        "Your open browser sessions",
    ),
    ("Angemeldet seit", "Logged in since"),
    ("Adresse", "Address"),
    ("diese Sitzung", "this session"),
    ("Beenden", "End"),
    ("Alle anderen Sitzungen beenden", "End all other sessions"),
    ("Die Sitzung wurde beendet.", "The session was ended."),
    (
        "Alle anderen Sitzungen wurden beendet.",
        "All other sessions were ended.",
    ),
    ("Sitzung nicht gefunden", "Session not found"),
    (
        "Diese Sitzung ist schon beendet.",
        "This session has already ended.",
    ),
    ("Letzte Anmeldungen", "Recent logins"),
    (
        "Anmeldungen im Browser und mit Ihren Geräten. Kennen Sie eine Anmeldung nicht, sperren Sie das Gerät und ändern Sie Ihr Passwort.",
        "Logins in the browser and with your devices. If you do not recognise a login, block the device and change your password.",
    ),
    ("Keine Anmeldungen.", "No logins."),
    ("Zeit", "Time"),
    ("Anzahl", "Count"),
    ("neue Adresse", "new address"),
    ("Web (Browser)", "Web (browser)"),
    ("E-Mail-Programm", "Mail program"),
    ("Neuere", "Newer"),
    ("Ältere", "Older"),
    // Login limits
    (
        "Anmeldung vorübergehend gesperrt",
        "Login temporarily blocked",
    ),
    (
        "Von Ihrer Adresse gab es zu viele fehlgeschlagene Anmeldungen. Die Anmeldung ist gesperrt bis",
        "There were too many failed logins from your address. Logging in is blocked until",
    ),
];

/// Texts handed to `t` through a variable (confirmations, errors), which the scan for
/// literal calls cannot see: each must have its English.
#[cfg(test)]
pub(super) const INDIRECT: &[&str] = &[
    "Das Gerät wurde gesperrt; sein App-Passwort gilt nicht mehr.",
    "Bitte geben Sie dem Gerät einen Namen mit 1 bis 100 Zeichen.",
    "Ein Gerät mit diesem Namen gibt es schon. Wählen Sie einen anderen Namen oder sperren Sie das alte Gerät zuerst.",
    "Dieses Gerät gibt es nicht (mehr).",
    "Die Sitzung wurde beendet.",
    "Alle anderen Sitzungen wurden beendet.",
];
