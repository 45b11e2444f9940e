//! English for the exemptions (forwarding, approvals) and held-messages pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[
    // Shared words of the tables and forms.
    ("Ablehnen", "Deny"),
    ("Absender", "Sender"),
    ("Aktion", "Action"),
    ("Antrag Nr.", "Request no."),
    ("Ausnahme Nr.", "Exemption no."),
    ("Beantragen", "Request"),
    ("Beantragt von", "Requested by"),
    ("Begründung", "Reason"),
    ("Bestätigen", "Confirm"),
    ("Bestätigungscode", "Confirmation code"),
    ("Datum", "Date"),
    ("Dauer in Tagen", "Duration in days"),
    ("Freigeben", "Approve"),
    ("Kategorien", "Categories"),
    ("Nachricht", "Message"),
    ("Neuere", "Newer"),
    ("Ältere", "Older"),
    ("Nr.", "No."),
    ("Postfach", "Mailbox"),
    ("Resttage", "Days left"),
    ("Seiten", "Pages"),
    ("Stand", "State"),
    ("Tage", "Days"),
    ("Widerrufen", "Revoke"),
    ("Zieladresse", "Target address"),
    ("ja", "yes"),
    ("noch nicht", "not yet"),
    ("höchstens", "at most"),
    ("Öffnen", "Open"),
    ("Kein Zugriff", "No access"),
    // Outcomes after a form.
    (
        "Der Antrag ist gestellt. Die Bestätigungs-E-Mail mit Code und Link ist an die Zieladresse unterwegs.",
        "The request is made. The confirmation e-mail with the code and the link is on its way to the target address.",
    ),
    (
        "Die Zieladresse ist bestätigt.",
        "The target address is confirmed.",
    ),
    ("Die Freigabe ist erteilt.", "The approval is given."),
    ("Der Antrag ist abgelehnt.", "The request is denied."),
    (
        "Die Weiterleitung ist widerrufen.",
        "The forwarding is revoked.",
    ),
    (
        "Das ist Ihnen nicht erlaubt. Vier-Augen-Prinzip: Wer einen Antrag gestellt hat oder dessen Postfach betroffen ist, kann ihn weder freigeben noch ablehnen.",
        "You are not allowed to do this. Four eyes: whoever made a request or whose mailbox it concerns can neither approve nor deny it.",
    ),
    (
        "Das war nicht möglich: Der Antrag wartet nicht (mehr) auf diese Entscheidung, oder Ihre Rolle hat bereits entschieden.",
        "That was not possible: the request does not (or no longer) wait for this decision, or your role has decided already.",
    ),
    (
        "Es gibt bereits einen offenen Antrag oder eine Anschlussausnahme. Schließen Sie ihn ab oder widerrufen Sie ihn zuerst.",
        "There is an open request or a follow-up exemption already. Finish it or revoke it first.",
    ),
    (
        "Diese Ausnahme gibt es nicht.",
        "This exemption does not exist.",
    ),
    (
        "Die Bestätigungs-E-Mail enthielte Angaben, die als vertraulich eingestuft werden. Sie wurde nicht gesendet, und es wurde nichts beantragt. Bitte prüfen Sie Zieladresse und Begründung.",
        "The confirmation e-mail would contain data classified as confidential. It was not sent, and nothing was requested. Please check the target address and the reason.",
    ),
    (
        "Bitte geben Sie eine Begründung an (höchstens 1000 Zeichen).",
        "Please give a reason (at most 1000 characters).",
    ),
    // Forwarding (staff).
    (
        "Dienstliche E-Mails dürfen nur mit einer genehmigten Ausnahme an eine private Adresse weitergeleitet werden. Vertrauliche Nachrichten werden nie weitergeleitet, nur ein Hinweis mit einem Link.",
        "Work e-mail may be forwarded to a private address only under an approved exemption. Confidential messages are never forwarded, only a notice with a link.",
    ),
    ("Ihre Ausnahmen", "Your exemptions"),
    (
        "Ihre Ausnahmen, neueste zuerst",
        "Your exemptions, newest first",
    ),
    (
        "Sie haben noch keine Weiterleitung beantragt.",
        "You have not requested forwarding yet.",
    ),
    ("noch Tage:", "days left:"),
    ("Weiterleitung beantragen", "Request forwarding"),
    (
        "An die Zieladresse geht eine E-Mail mit einem Bestätigungscode und einem Link. Öffnen Sie den Link, melden Sie sich an und geben Sie den Code ein. Danach entscheidet die Administration über den Antrag.",
        "An e-mail with a confirmation code and a link goes to the target address. Open the link, log in and enter the code. Then the administration decides on the request.",
    ),
    (
        "Zusätzlich muss der Datenschutz zustimmen.",
        "The data-protection officer must agree as well.",
    ),
    (
        "Private E-Mail-Adresse (Ziel)",
        "Private e-mail address (target)",
    ),
    (
        "Bitte geben Sie eine gültige E-Mail-Adresse als Ziel an.",
        "Please give a valid e-mail address as the target.",
    ),
    (
        "Bitte geben Sie eine Dauer in Tagen innerhalb der erlaubten Höchstdauer an.",
        "Please give a duration in days within the allowed maximum.",
    ),
    (
        "Diese Weiterleitung ist nach den Regeln nicht erlaubt: Das Ziel muss eine private Adresse einer zugelassenen Domain sein.",
        "This forwarding is not allowed by the rules: the target must be a private address of a permitted domain.",
    ),
    (
        "Das ist Ihnen nicht erlaubt.",
        "You are not allowed to do this.",
    ),
    // The confirmation link.
    ("Zieladresse bestätigen", "Confirm the target address"),
    ("Weiterleitung an", "Forwarding to"),
    (
        "Geben Sie den 8-stelligen Code aus der Bestätigungs-E-Mail ein. Er gilt bis",
        "Enter the 8-digit code from the confirmation e-mail. It is valid until",
    ),
    ("Zurück zur Weiterleitung", "Back to forwarding"),
    (
        "Bitte geben Sie die 8 Ziffern des Codes ein.",
        "Please enter the 8 digits of the code.",
    ),
    (
        "Der Code ist falsch. Verbleibende Versuche:",
        "The code is wrong. Tries left:",
    ),
    ("Link unbekannt", "Unknown link"),
    (
        "Diesen Bestätigungslink gibt es nicht. Bitte prüfen Sie, ob er vollständig kopiert wurde.",
        "This confirmation link does not exist. Please check that it was copied completely.",
    ),
    (
        "Dieser Bestätigungslink gehört zu einem anderen Benutzer. Nur wer die Weiterleitung für das eigene Postfach beantragt hat, kann sie bestätigen.",
        "This confirmation link belongs to another user. Only whoever requested forwarding of their own mailbox can confirm it.",
    ),
    ("Link abgelaufen", "Link expired"),
    (
        "Code und Link sind abgelaufen; der Antrag ist verfallen. Sie können unter „Weiterleitung“ einen neuen stellen.",
        "The code and the link have expired; the request has lapsed. You can make a new one under \"Forwarding\".",
    ),
    ("Bereits bestätigt", "Confirmed already"),
    (
        "Diese Zieladresse ist bereits bestätigt. Den Stand sehen Sie unter „Weiterleitung“.",
        "This target address is confirmed already. See the state under \"Forwarding\".",
    ),
    ("Antrag beendet", "Request ended"),
    (
        "Dieser Antrag wurde abgelehnt oder widerrufen; eine Bestätigung ist nicht mehr möglich.",
        "This request was denied or revoked; it can no longer be confirmed.",
    ),
    ("Zu viele falsche Codes", "Too many wrong codes"),
    (
        "Der Code wurde zu oft falsch eingegeben; der Antrag wurde abgelehnt. Sie können unter „Weiterleitung“ einen neuen stellen.",
        "The code was entered wrongly too often; the request was denied. You can make a new one under \"Forwarding\".",
    ),
    // Approvals.
    ("Vier-Augen-Prinzip", "Four eyes"),
    (
        "Wer einen Antrag gestellt hat oder dessen Postfach betroffen ist, kann ihn weder freigeben noch ablehnen.",
        "Whoever made a request or whose mailbox it concerns can neither approve nor deny it.",
    ),
    (
        "Jede Rolle gibt einmal frei: eine Person aus der Administration",
        "Each role approves once: one person of the administration",
    ),
    (
        "und zusätzlich der Datenschutz",
        "and the data-protection officer as well",
    ),
    (
        "Aktiv wird eine Weiterleitung erst, wenn die Zieladresse bestätigt und der Antrag freigegeben ist.",
        "Forwarding becomes active only when the target address is confirmed and the request is approved.",
    ),
    (
        "Eine Ablehnung braucht eine Begründung; die Antragstellerin oder der Antragsteller erhält sie per E-Mail.",
        "A denial needs a reason; the person who made the request receives it by e-mail.",
    ),
    (
        "Offene Anträge, älteste zuerst",
        "Open requests, oldest first",
    ),
    ("Keine offenen Anträge.", "No open requests."),
    ("Zieladresse bestätigt", "Target address confirmed"),
    ("Entscheiden nicht möglich:", "You cannot decide:"),
    ("Freigeben nicht möglich:", "You cannot approve:"),
    ("Begründung der Ablehnung", "Reason for the denial"),
    (
        "Es geht um Ihr eigenes Postfach: Eine andere Person muss entscheiden.",
        "It concerns your own mailbox: another person must decide.",
    ),
    (
        "Sie haben den Antrag gestellt: Eine andere Person muss entscheiden.",
        "You made the request: another person must decide.",
    ),
    (
        "Die Administration hat bereits freigegeben.",
        "The administration has approved already.",
    ),
    (
        "Eine Freigabe durch den Datenschutz ist nicht vorgeschrieben; es entscheidet die Administration. Ablehnen können Sie.",
        "Approval by the data-protection officer is not required; the administration decides. You can deny.",
    ),
    (
        "Der Datenschutz hat bereits freigegeben.",
        "The data-protection officer has approved already.",
    ),
    // Exemptions (admin).
    (
        "Alle aktiven und geplanten Weiterleitungen. Ein Widerruf beendet die Weiterleitung sofort; die Person wird per E-Mail informiert.",
        "All active and scheduled forwardings. Revoking ends the forwarding at once; the person is told by e-mail.",
    ),
    (
        "Aktive und geplante Ausnahmen",
        "Active and scheduled exemptions",
    ),
    ("Keine aktiven Ausnahmen.", "No active exemptions."),
    // Held messages.
    (
        "Nachrichten mit vertraulichem Inhalt erhalten Sie nur als Hinweis. Hier finden Sie diese Hinweise mit dem Link zur Nachricht, neueste zuerst.",
        "Messages with confidential content reach you only as a notice. Here you find these notices with the link to the message, newest first.",
    ),
    (
        "Dieser Link ist abgelaufen oder wurde widerrufen. Die Nachricht liegt weiterhin in Ihrem Dienstpostfach.",
        "This link has expired or was revoked. The message is still in your work mailbox.",
    ),
    ("Keine zurückgehaltenen Nachrichten.", "No held messages."),
    ("Hinweise, neueste zuerst", "Notices, newest first"),
    ("Link abgelaufen oder widerrufen", "Link expired or revoked"),
];
