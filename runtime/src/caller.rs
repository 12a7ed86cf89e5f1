//! [`Caller`]: who acts, passed the same way to every verb of
//! [`crate::Runtime`].
//!
//! A caller is the embedding program itself ([`Caller::host`], which may do
//! anything), the embedding program acting for someone it has already
//! vouched for ([`Caller::named`], unchecked but recorded as the owner of
//! what it makes), or a [`User`] whose access is checked on every verb
//! ([`Caller::for_user`]). Any of them may act inside a Run
//! ([`Caller::in_scope`]): the Runs it makes record that Run as their
//! `parent_run`, and the artifacts it loads and saves are added to the
//! scope's lineage.

/// Who acts, and inside which Run. See the module docs.
///
/// ```
/// use rh_runtime::{Caller, User};
/// let host = Caller::host();
/// assert!(host.user().is_none() && host.creator().is_none());
///
/// let alice = Caller::for_user(User::new("alice")).in_scope("ctx_run");
/// assert_eq!(alice.creator(), Some("alice"));
/// assert_eq!(alice.scope(), Some("ctx_run"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    user: Option<User>,
    /// Who is recorded as the creator when no user is checked.
    named: Option<String>,
    scope: Option<String>,
}

impl Caller {
    /// The embedding program: it may do anything, and what it makes has
    /// no owner (only administrators reach it once users are checked).
    pub fn host() -> Caller {
        Caller::default()
    }

    /// The embedding program acting for `name` without checks (a daemon
    /// without users, the CLI on its own machine): what it makes is
    /// recorded as `name`'s.
    pub fn named(name: impl Into<String>) -> Caller {
        Caller {
            named: Some(name.into()),
            ..Caller::default()
        }
    }

    /// A user: their access is checked on every verb (the function, the
    /// Run's name, a parent Run, the artifacts its guest loads and saves)
    /// and they own what they make.
    pub fn for_user(user: User) -> Caller {
        Caller {
            user: Some(user),
            ..Caller::default()
        }
    }

    /// `user` when there is one, else the embedding program.
    pub fn of(user: Option<User>) -> Caller {
        user.map_or_else(Caller::host, Caller::for_user)
    }

    /// The same caller acting inside the Run `scope`.
    pub fn in_scope(mut self, scope: impl Into<String>) -> Caller {
        self.scope = Some(scope.into());
        self
    }

    /// The same caller acting inside `scope`, when there is one.
    pub fn in_scope_opt(self, scope: Option<String>) -> Caller {
        match scope {
            Some(s) => self.in_scope(s),
            None => self,
        }
    }

    /// The checked user, if any.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// Who is recorded as the creator of what this caller makes.
    pub fn creator(&self) -> Option<&str> {
        self.user
            .as_ref()
            .map(|u| u.name.as_str())
            .or(self.named.as_deref())
    }

    /// The Run this caller acts inside, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The same caller outside any scope.
    pub(crate) fn unscoped(&self) -> Caller {
        Caller {
            scope: None,
            ..self.clone()
        }
    }
}

/// A user, as a daemon with users knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's name, recorded as `creator` of what they make.
    pub name: String,
    /// An administrator sees and may change everything.
    pub admin: bool,
}

impl User {
    /// A user without administrator rights.
    pub fn new(name: impl Into<String>) -> User {
        User {
            name: name.into(),
            admin: false,
        }
    }
}
