//! Verdict categories as people read them: the names come from the classifier's one table
//! (`classifier::verdict::category`, also used by the notices), in the page's language.

use classifier::verdict::category;

use crate::i18n::Lang;

/// Every built-in category id, in the order filters offer them.
pub(crate) const ALL: &[&str] = category::ALL;

/// One category of a stored verdict, for a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Category {
    /// Its name in the page's language (a custom rule's category: its id).
    pub(crate) name: String,
    /// A classification marking (VS-NfD or higher): shown in capitals, as it is stamped.
    pub(crate) marking: bool,
}

/// The name of category `id` in `lang`; an unknown (custom) id is shown as it is.
pub(crate) fn name(lang: Lang, id: &str) -> String {
    match lang {
        Lang::German => category::name_de(id),
        Lang::English => category::name_en(id),
    }
    .to_owned()
}

/// Whether `id` is a built-in category (filters accept only these).
pub(crate) fn known(id: &str) -> bool {
    ALL.contains(&id)
}

/// The categories `ids` (category ids of a verdict) named in `lang`, in the given order.
pub(crate) fn named(ids: &[String], lang: Lang) -> Vec<Category> {
    ids.iter()
        .map(|id| Category {
            name: name(lang, id),
            marking: category::MARKINGS.contains(&id.as_str()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_both_languages_and_markings_flagged() {
        let ids = vec![
            "vs_nfd".to_owned(),
            "health".to_owned(),
            "eigene_regel".to_owned(),
        ];
        let de = named(&ids, Lang::German);
        assert_eq!(de[0].name, "VS – Nur für den Dienstgebrauch");
        assert!(de[0].marking && !de[1].marking);
        assert_eq!(de[1].name, "Gesundheitsdaten");
        assert_eq!(de[2].name, "eigene_regel");
        assert_eq!(named(&ids, Lang::English)[1].name, "Health data");
    }

    #[test]
    fn every_category_has_a_name_in_both_languages() {
        for id in ALL {
            assert_ne!(name(Lang::German, id), *id, "German name of {id}");
            assert_ne!(name(Lang::English, id), *id, "English name of {id}");
            assert!(known(id));
        }
        assert!(!known("eigene_regel"));
    }
}
