//! English for the data-protection officer's pages: audit trail, register, figures (see
//! [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[
    // Audit trail
    (
        "Alle protokollierten Vorgänge, neueste zuerst. Jeder Eintrag ist mit dem vorherigen verkettet, sodass nachträgliche Änderungen erkennbar sind.",
        "Everything recorded, newest first. Each entry is chained to the one before, so later changes are detectable.",
    ),
    ("Protokollkette jetzt prüfen", "Verify the chain now"),
    ("Ereignis", "Event"),
    ("Von (Datum)", "From (date)"),
    ("Bis (Datum, einschließlich)", "Until (date, inclusive)"),
    ("Export", "Export"),
    (
        "Der Export enthält alle Einträge des gewählten Zeitraums (ohne Filter nach Benutzer oder Ereignis) mit ihren Prüfsummen.",
        "The export holds every entry of the chosen period (not filtered by user or event) with its hashes.",
    ),
    ("Als CSV herunterladen", "Download as CSV"),
    ("Als JSON Lines herunterladen", "Download as JSON Lines"),
    ("Einträge", "Entries"),
    ("Keine Einträge.", "No entries."),
    ("Zeit", "Time"),
    ("Vorgang", "What happened"),
    (
        "Bitte geben Sie die Daten im Format JJJJ-MM-TT an.",
        "Please give the dates as YYYY-MM-DD.",
    ),
    (
        "Prüfung der Protokollkette",
        "Verification of the audit chain",
    ),
    (
        "Die Protokollkette ist intakt.",
        "The audit chain is intact.",
    ),
    (
        "Einträge geprüft; keiner wurde verändert, entfernt oder eingefügt.",
        "entries checked; none was changed, removed or inserted.",
    ),
    (
        "signierte Prüfpunkte dieser Installation stimmen mit dem Protokoll überein.",
        "signed checkpoints of this installation match the log.",
    ),
    (
        "Gegen Änderungen durch jemanden mit Zugriff auf die Datenbank beweist das erst der Abgleich mit Prüfpunkten, die außerhalb seiner Reichweite aufbewahrt werden, etwa den Prüfpunkt-E-Mails an die Datenschutzbeauftragte:",
        "Against changes by someone with access to the database, only a comparison with checkpoints kept out of their reach proves it, such as the checkpoint mails to the data-protection officer:",
    ),
    (
        "Prüfsumme des letzten Eintrags (zum Vergleich bei späteren Prüfungen aufbewahren):",
        "Hash of the newest entry (keep it to compare with later checks):",
    ),
    (
        "Die Protokollkette ist unterbrochen.",
        "The audit chain is broken.",
    ),
    (
        "Der erste fehlerhafte Eintrag ist Nr.",
        "The first bad entry is no.",
    ),
    ("Technische Angabe:", "Technical detail:"),
    (
        "Das Protokoll wurde außerhalb von ratspost verändert. Bitte sichern Sie die Datenbank und informieren Sie die IT-Sicherheit.",
        "The log was changed outside ratspost. Please secure the database and inform IT security.",
    ),
    ("Zurück zum Protokoll", "Back to the audit trail"),
    // Event names (`dpo/audit/sentences.rs`, EVENTS)
    ("Benutzerkonto angelegt", "Account created"),
    ("Passwort geändert", "Password changed"),
    ("Benutzerkonto gesperrt", "Account disabled"),
    ("Benutzerkonto freigegeben", "Account enabled"),
    ("Gerätepasswort angelegt", "Device password created"),
    ("Gerätepasswort widerrufen", "Device password revoked"),
    (
        "Geräteanmeldung von neuer Adresse",
        "Device login from a new address",
    ),
    (
        "Versandanmeldung von neuer Adresse",
        "Sending login from a new address",
    ),
    (
        "Falsches Passwort an der Kommandozeile",
        "Wrong password on the command line",
    ),
    ("Weiterleitung beantragt", "Forwarding requested"),
    ("Falscher Bestätigungscode", "Wrong confirmation code"),
    ("Zieladresse bestätigt", "Target address confirmed"),
    ("Ausnahme genehmigt", "Exemption approved"),
    ("Ausnahme abgelehnt", "Exemption denied"),
    ("Ausnahme widerrufen", "Exemption revoked"),
    ("Ausnahme abgelaufen", "Exemption expired"),
    ("Ausnahme in Kraft", "Exemption in force"),
    ("Ausnahme vorgemerkt", "Exemption scheduled"),
    ("Erinnerung an Ablauf gesendet", "Expiry reminder sent"),
    ("Weiterleitung beschlossen", "Forward decided"),
    ("Weiterleitung zugestellt", "Forward delivered"),
    ("Nachricht gesendet", "Message sent"),
    (
        "Zurückgehaltene Nachricht freigegeben",
        "Held message released",
    ),
    ("Auftrag verworfen", "Job dropped"),
    ("Zustellung gescheitert", "Delivery failed"),
    ("Nachrichtenlink geöffnet", "Message link opened"),
    ("Nachrichtenlink abgewiesen", "Message link refused"),
    ("Nachrichtenlinks widerrufen", "Message links revoked"),
    (
        "Ausgehende Nachricht zurückgehalten",
        "Outgoing message withheld",
    ),
    ("Protokoll exportiert", "Audit trail exported"),
    // Sentences (`dpo/audit/sentences.rs`)
    ("ratspost (automatisch)", "ratspost (automatic)"),
    ("die Kommandozeile", "the command line"),
    ("Ansicht", "view"),
    ("Originalnachricht", "original message"),
    ("Anhang", "attachment"),
    (
        "Downloads sind abgeschaltet (web.downloads = none)",
        "downloads are switched off (web.downloads = none)",
    ),
    (
        "Downloads eingestufter Nachrichten sind abgeschaltet (web.downloads = not_classified)",
        "downloads of classified messages are switched off (web.downloads = not_classified)",
    ),
    (
        "zu viele falsche Bestätigungscodes",
        "too many wrong confirmation codes",
    ),
    (
        "der Bestätigungscode ist abgelaufen",
        "the confirmation code expired",
    ),
    ("die Geltungsdauer ist zu Ende", "its period ended"),
    ("der Link wurde widerrufen", "the link was revoked"),
    ("der Link ist abgelaufen", "the link has expired"),
    (
        "der Link gehört zu einem anderen Postfach",
        "the link belongs to another mailbox",
    ),
    ("von Hand verworfen", "dropped by hand"),
    (
        "{actor} hat das Benutzerkonto {user} angelegt.",
        "{actor} created the account of {user}.",
    ),
    (
        "{actor} hat das Passwort von {user} geändert.",
        "{actor} changed the password of {user}.",
    ),
    (
        "{actor} hat das Benutzerkonto {user} gesperrt.",
        "{actor} disabled the account of {user}.",
    ),
    (
        "{actor} hat das Benutzerkonto {user} wieder freigegeben.",
        "{actor} enabled the account of {user} again.",
    ),
    (
        "{actor} hat für {user} das Gerätepasswort „{label}“ angelegt.",
        "{actor} created the device password “{label}” for {user}.",
    ),
    (
        "{actor} hat das Gerätepasswort „{label}“ von {user} widerrufen.",
        "{actor} revoked the device password “{label}” of {user}.",
    ),
    (
        "{user} hat sich mit einem Gerät von einer neuen Adresse angemeldet ({ip}).",
        "{user} logged in with a device from a new address ({ip}).",
    ),
    (
        "{user} hat sich zum Senden mit einem Gerät von einer neuen Adresse angemeldet ({ip}).",
        "{user} logged in to send with a device from a new address ({ip}).",
    ),
    (
        "{actor} hat mit dem Gerät „{label}“ eine Nachricht an {recipients} Empfänger gesendet; sie wird zurückgehalten, bis sie freigegeben wird, weil sie vertrauliche Inhalte enthält ({categories}) (Auftrag Nr. {job}).",
        "{actor} sent a message from the device “{label}” to {recipients} recipients; it is held until released because it contains confidential content ({categories}) (job no. {job}).",
    ),
    (
        "{actor} hat mit dem Gerät „{label}“ eine Nachricht mit vertraulichen Inhalten ({categories}) an {recipients} Empfänger gesendet (Auftrag Nr. {job}).",
        "{actor} sent a message from the device “{label}” with confidential content ({categories}) to {recipients} recipients (job no. {job}).",
    ),
    (
        "{actor} hat mit dem Gerät „{label}“ eine Nachricht an {recipients} Empfänger gesendet (Auftrag Nr. {job}).",
        "{actor} sent a message from the device “{label}” to {recipients} recipients (job no. {job}).",
    ),
    (
        "{actor} hat die zurückgehaltene Nachricht (Auftrag Nr. {job}) zum Versand freigegeben.",
        "{actor} released the held message (job no. {job}) for sending.",
    ),
    (
        "An der Kommandozeile wurde ein falsches Passwort für {actor} eingegeben.",
        "A wrong password for {actor} was entered on the command line.",
    ),
    (
        "{actor} hat die Weiterleitung der Post von {user} an {target} für {days} Tage beantragt (Ausnahme Nr. {id}).",
        "{actor} requested forwarding of {user}'s mail to {target} for {days} days (exemption no. {id}).",
    ),
    (
        "Für die Ausnahme Nr. {id} von {user} wurde ein falscher Bestätigungscode eingegeben ({attempts}. Fehlversuch).",
        "A wrong confirmation code was entered for exemption no. {id} of {user} (failed attempt {attempts}).",
    ),
    (
        "{user} hat die Zieladresse {target} der Ausnahme Nr. {id} mit dem Code bestätigt.",
        "{user} confirmed the target address {target} of exemption no. {id} with the code.",
    ),
    (
        "{actor} hat die Ausnahme Nr. {id} für {user} genehmigt.",
        "{actor} approved exemption no. {id} for {user}.",
    ),
    (
        "Die Ausnahme Nr. {id} für {user} wurde abgelehnt: {reason}.",
        "Exemption no. {id} for {user} was denied: {reason}.",
    ),
    (
        "{actor} hat die Ausnahme Nr. {id} für {user} abgelehnt. Begründung: {reason}",
        "{actor} denied exemption no. {id} for {user}. Reason: {reason}",
    ),
    (
        "{actor} hat die Ausnahme Nr. {id} für {user} widerrufen.",
        "{actor} revoked exemption no. {id} for {user}.",
    ),
    (
        "Die Ausnahme Nr. {id} für {user} ist abgelaufen: {reason}.",
        "Exemption no. {id} for {user} expired: {reason}.",
    ),
    (
        "Die Ausnahme Nr. {id} für {user} ist in Kraft bis {until}.",
        "Exemption no. {id} for {user} is in force until {until}.",
    ),
    (
        "Die Ausnahme Nr. {id} für {user} ist genehmigt und gilt vom {from} bis {until}.",
        "Exemption no. {id} for {user} is approved and applies from {from} until {until}.",
    ),
    (
        "{user} wurde daran erinnert, dass die Ausnahme Nr. {id} am {until} endet.",
        "{user} was reminded that exemption no. {id} ends on {until}.",
    ),
    (
        "Für eine vertrauliche Nachricht an {user} wird ein Hinweis an {target} gesendet (Nachricht Nr. {message}, Ausnahme Nr. {id}).",
        "For a confidential message to {user} a notice goes to {target} (message no. {message}, exemption no. {id}).",
    ),
    (
        "Eine Nachricht an {user} wird an {target} weitergeleitet (Nachricht Nr. {message}, Ausnahme Nr. {id}).",
        "A message to {user} is forwarded to {target} (message no. {message}, exemption no. {id}).",
    ),
    (
        "Der Hinweis an {target} wurde zugestellt (Auftrag Nr. {job}).",
        "The notice to {target} was delivered (job no. {job}).",
    ),
    (
        "Die Weiterleitung an {target} wurde zugestellt (Auftrag Nr. {job}).",
        "The forward to {target} was delivered (job no. {job}).",
    ),
    (
        "Der Auftrag Nr. {job} an {target} wurde nicht gesendet: {error}.",
        "Job no. {job} to {target} was not sent: {error}.",
    ),
    (
        "{actor} hat den Auftrag Nr. {job} verworfen.",
        "{actor} dropped job no. {job}.",
    ),
    (
        "Die Zustellung von Auftrag Nr. {job} an {target} ist endgültig gescheitert: {error}.",
        "Delivery of job no. {job} to {target} failed for good: {error}.",
    ),
    (
        "{actor} hat den Nachrichtenlink geöffnet (Nachricht Nr. {message}, {what}).",
        "{actor} opened the message link (message no. {message}, {what}).",
    ),
    (
        "Der Nachrichtenlink wurde {actor} verweigert (Nachricht Nr. {message}): {reason}.",
        "The message link was refused to {actor} (message no. {message}): {reason}.",
    ),
    (
        "{actor} hat die Nachrichtenlinks von Nachricht Nr. {message} widerrufen ({links} noch gültige).",
        "{actor} revoked the message links of message no. {message} ({links} still valid).",
    ),
    (
        "Eine ausgehende Nachricht wurde zurückgehalten, weil sie vertrauliche Inhalte enthält ({categories}).",
        "An outgoing message was withheld because it holds confidential content ({categories}).",
    ),
    (
        "{actor} hat das Protokoll exportiert.",
        "{actor} exported the audit trail.",
    ),
    // Register
    ("Verzeichnis der Ausnahmen", "Register of exemptions"),
    (
        "Alle Ausnahmen vom Weiterleitungsverbot, laufende und beendete, neueste zuerst: wessen Post, wohin, warum, wer sie genehmigt hat, wie lange sie galt und wie viele Nachrichten unter ihr weitergeleitet wurden.",
        "Every exemption from the forwarding ban, current and ended, newest first: whose mail, to where, why, who approved it, how long it applied and how many messages were forwarded under it.",
    ),
    (
        "Es gibt noch keine Ausnahmen.",
        "There are no exemptions yet.",
    ),
    ("Postfach von", "Mailbox of"),
    ("Ziel", "Target"),
    ("Begründung", "Reason"),
    ("Beantragt von", "Requested by"),
    ("Genehmigt von", "Approved by"),
    ("Gültig ab", "Valid from"),
    ("Gültig bis", "Valid until"),
    ("Beendet", "Ended"),
    ("Weiterleitungen (zugestellt)", "Forwards (delivered)"),
    ("Hinweise (zugestellt)", "Notices (delivered)"),
    (
        "beantragt, Code nicht bestätigt",
        "requested, code not confirmed",
    ),
    (
        "bestätigt, wartet auf Genehmigung",
        "confirmed, waiting for approval",
    ),
    ("genehmigt, beginnt später", "approved, begins later"),
    ("abgelaufen", "expired"),
    ("widerrufen", "revoked"),
    ("abgelehnt", "denied"),
    // Figures
    (
        "Weiterleitungen und Hinweise an private Adressen sowie geöffnete und abgewiesene Nachrichtenlinks je Kalenderwoche.",
        "Forwards and notices to private addresses, and opened and refused message links, per calendar week.",
    ),
    ("Wochen", "weeks"),
    ("Anzeigen", "Show"),
    ("Kennzahlen je Woche", "Figures per week"),
    ("Woche", "Week"),
    ("Weiterleitungen", "Forwards"),
    ("Hinweise", "Notices"),
    ("Geöffnete Links", "Opened links"),
    ("Abgewiesene Aufrufe", "Refused views"),
    ("KW", "Week"),
    ("Summe der letzten", "Total of the last"),
    (
        "Die Zahlen je Woche stehen in der Tabelle unter dem Diagramm.",
        "The numbers per week are in the table below the chart.",
    ),
];
