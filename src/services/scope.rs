//! The scopes a service may ask for: a fixed list, each with the French
//! sentence the consent screen shows.

/// One scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read the documents of the dossier.
    DocumentsRead,
    /// Add documents to the dossier.
    DocumentsWrite,
    /// Read the profil médical.
    ProfileRead,
    /// Read the agenda.
    AgendaRead,
    /// Add appointments to the agenda.
    AgendaWrite,
    /// Send content-free notifications to the patient.
    MessagesNotify,
}

impl Scope {
    /// Every scope, in the order pages list them.
    pub const ALL: [Scope; 6] = [
        Scope::DocumentsRead,
        Scope::DocumentsWrite,
        Scope::ProfileRead,
        Scope::AgendaRead,
        Scope::AgendaWrite,
        Scope::MessagesNotify,
    ];

    /// The OAuth name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::DocumentsRead => "documents.read",
            Scope::DocumentsWrite => "documents.write",
            Scope::ProfileRead => "profile.read",
            Scope::AgendaRead => "agenda.read",
            Scope::AgendaWrite => "agenda.write",
            Scope::MessagesNotify => "messages.notify",
        }
    }

    /// What the patient allows, in plain French.
    pub fn french(self) -> &'static str {
        match self {
            Scope::DocumentsRead => "Lire les documents de votre dossier médical",
            Scope::DocumentsWrite => "Ajouter des documents à votre dossier médical",
            Scope::ProfileRead => {
                "Lire votre profil médical (maladies, allergies, vaccinations, traitements, mesures)"
            }
            Scope::AgendaRead => "Lire les rendez-vous de votre agenda",
            Scope::AgendaWrite => {
                "Ajouter des rendez-vous à votre agenda, et annuler ceux qu'il a ajoutés"
            }
            Scope::MessagesNotify => {
                "Vous envoyer des notifications (sans contenu médical) dans votre messagerie"
            }
        }
    }

    /// The scope of an OAuth name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A set of scopes (sorted, no duplicates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// Parses a space-separated list; None when a name is unknown.
    pub fn parse(list: &str) -> Option<Scopes> {
        let mut out = Vec::new();
        for name in list.split_ascii_whitespace() {
            out.push(Scope::parse(name)?);
        }
        out.sort();
        out.dedup();
        Some(Scopes(out))
    }

    /// The stored set of a row (unknown names, from an older list, dropped).
    pub fn stored(list: &str) -> Scopes {
        let mut out: Vec<Scope> = list
            .split_ascii_whitespace()
            .filter_map(Scope::parse)
            .collect();
        out.sort();
        out.dedup();
        Scopes(out)
    }

    /// Whether `s` is in the set.
    pub fn has(&self, s: Scope) -> bool {
        self.0.contains(&s)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn within(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.has(*s))
    }

    /// The scopes in both.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.iter().copied().filter(|s| other.has(*s)).collect())
    }

    /// Space separated, as stored and as OAuth writes it.
    pub fn to_list(&self) -> String {
        self.0
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_compare() {
        let a = Scopes::parse("profile.read documents.read documents.read").unwrap();
        assert_eq!(a.to_list(), "documents.read profile.read");
        assert!(Scopes::parse("documents.read admin").is_none());
        let b = Scopes::parse("documents.read").unwrap();
        assert!(b.within(&a) && !a.within(&b));
        assert_eq!(a.intersect(&b), b);
    }
}
