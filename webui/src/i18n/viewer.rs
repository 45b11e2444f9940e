//! English for the viewer pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[
    ("(ohne Betreff)", "(no subject)"),
    ("Von", "From"),
    ("An", "To"),
    ("Datum", "Date"),
    ("Anhänge", "Attachments"),
    ("Nachrichtentext", "Message text"),
    ("Bytes", "bytes"),
    (
        "Originalnachricht herunterladen (.eml)",
        "Download the original message (.eml)",
    ),
    (
        "Jeder Abruf dieser Nachricht wird protokolliert.",
        "Every access to this message is logged.",
    ),
    (
        "Warum diese Nachricht zurückgehalten wurde",
        "Why this message was held back",
    ),
    (
        "Die Prüfung hat in dieser Nachricht Folgendes erkannt. Deshalb wurde sie nicht an Ihre Geräte zugestellt, sondern nur hier bereitgestellt.",
        "The check found the following in this message. It was therefore not delivered to your devices but is only available here.",
    ),
    ("Externes Bild blockiert", "External image blocked"),
    (
        "Eingebettetes Bild nicht angezeigt",
        "Embedded image not shown",
    ),
    ("1 externes Bild blockiert.", "1 external image blocked."),
    ("externe Bilder blockiert.", "external images blocked."),
    (
        "1 eingebettetes Bild nicht angezeigt.",
        "1 embedded image not shown.",
    ),
    (
        "eingebettete Bilder nicht angezeigt.",
        "embedded images not shown.",
    ),
    (
        "Bilder werden nicht geladen, damit niemand erfährt, dass und wann Sie die Nachricht geöffnet haben.",
        "Images are not loaded, so that nobody learns that and when you opened the message.",
    ),
    (
        "Nachricht kann nicht angezeigt werden",
        "Message cannot be displayed",
    ),
    (
        "Diese Nachricht lässt sich nicht darstellen. Laden Sie das Original herunter, sofern Downloads erlaubt sind.",
        "This message cannot be displayed. Download the original if downloads are allowed.",
    ),
    (
        "Downloads sind auf diesem Server abgeschaltet. Die Nachricht kann nur angesehen werden.",
        "Downloads are switched off on this server. The message can only be viewed.",
    ),
    (
        "Diese Nachricht ist als Verschlusssache eingestuft (VS – Nur für den Dienstgebrauch oder höher). Original und Anhänge können deshalb nicht heruntergeladen werden; die Nachricht kann nur angesehen werden.",
        "This message is classified (VS – for official use only, or higher). Its original and attachments therefore cannot be downloaded; the message can only be viewed.",
    ),
    ("Download nicht erlaubt", "Download not allowed"),
    (
        "Das Original und die Anhänge dieser Nachricht dürfen nach den Vorgaben Ihrer Verwaltung nicht heruntergeladen werden. Sie können die Nachricht weiterhin ansehen. Der Versuch wurde protokolliert.",
        "Your administration's rules do not allow downloading this message's original or attachments. You can still view the message. The attempt has been logged.",
    ),
    ("Link unbekannt", "Unknown link"),
    (
        "Diesen Link gibt es nicht. Bitte prüfen Sie, ob er vollständig kopiert wurde.",
        "This link does not exist. Please check that it was copied completely.",
    ),
    ("Link nicht verfügbar", "Link not available"),
    ("Nachricht gelöscht", "Message deleted"),
    (
        "Der Inhalt dieser Nachricht wurde nach Ablauf der Aufbewahrungsfrist gelöscht (Speicherbegrenzung). Absender, Datum und Einstufung bleiben protokolliert.",
        "The content of this message was deleted when its retention period ended (storage limitation). Its sender, date and classification remain on record.",
    ),
    (
        "Dieser Link wurde widerrufen.",
        "This link has been revoked.",
    ),
    (
        "Dieser Link ist abgelaufen. Die Nachricht liegt weiterhin in Ihrem Dienstpostfach.",
        "This link has expired. The message is still in your work mailbox.",
    ),
    (
        "Dieser Link gehört zu einem anderen Postfach. Der Versuch wurde protokolliert.",
        "This link belongs to another mailbox. The attempt has been logged.",
    ),
    ("Anhang unbekannt", "Unknown attachment"),
    (
        "Diese Nachricht hat keinen solchen Anhang.",
        "This message has no such attachment.",
    ),
];
