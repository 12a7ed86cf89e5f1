//! Who may do what: owners, users and shares.
//!
//! Every function, Run and artifact has an owner, its `creator`: the user
//! who deployed the name, made the Run, or saved the artifact's first
//! version. The owner may grant other users `read` access (call the
//! function, read the Run, load the artifact) or `write` access (also
//! cancel, delete, redeploy or save a new version). Grants live in
//! `<root>/access/shares.json`, replaced atomically under a lock, so they
//! never change a Run's record.
//!
//! Checks apply only to callers named as a [`User`]: a runtime embedded
//! without users, or a call made with no user, has full access, as before.
//! A user who may not see an object is told it does not exist, exactly as
//! when it does not; a user who may see it but not change it is refused
//! with [`Error::Forbidden`].

use crate::parts::Parts;
pub(crate) use crate::store::grants::{Access, AccessStore, Key, ObjectKind, Share};
use crate::store::index::search::Visible;
use crate::{Caller, Error, Result, User};
use std::collections::HashMap;
use std::sync::Arc;

/// The error for an object that `user` may not see: the same as for one
/// that does not exist.
pub(crate) fn hidden(kind: ObjectKind, name: &str) -> Error {
    Error::NotFound {
        what: kind.what(),
        name: name.to_string(),
    }
}

/// Taking a name that another user's object holds: the answer says only
/// that the name is taken (names are the cluster's), nothing about the
/// object, and the same whatever kind of answer the check gave.
pub(crate) fn taken(e: Error, kind: ObjectKind, name: &str) -> Error {
    match e {
        Error::NotFound { .. } => Error::Forbidden {
            message: format!(
                "the {} name `{name}` is taken by another user; choose another",
                kind.what()
            ),
        },
        e => e,
    }
}

fn forbidden(user: &User, kind: ObjectKind, name: &str, doing: &str) -> Error {
    Error::Forbidden {
        message: format!(
            "user `{}` has read access to {kind} `{name}`; {doing} needs write access",
            user.name
        ),
    }
}

/// A check for a user's access, carried by a Run so its guest's artifact
/// calls are checked as that user.
#[derive(Clone)]
pub(crate) struct Guard {
    pub user: User,
    pub access: Arc<AccessStore>,
}

impl Guard {
    /// What the user may do to an object owned by `owner`: everything as
    /// its owner or an admin, else what they were granted.
    pub fn level(
        &self,
        kind: ObjectKind,
        name: &str,
        owner: Option<&str>,
    ) -> Result<Option<Access>> {
        if self.user.admin || owner == Some(self.user.name.as_str()) {
            return Ok(Some(Access::Write));
        }
        self.access.granted(kind, name, &self.user.name)
    }

    /// Whether the user has at least `need` on the object.
    pub fn has(&self, kind: ObjectKind, name: &str, owner: Option<&str>, need: Access) -> bool {
        matches!(self.level(kind, name, owner), Ok(Some(a)) if a >= need)
    }

    /// Refuse unless the user has `need` on the object; `doing` names the
    /// act for the error.
    pub fn require(
        &self,
        kind: ObjectKind,
        name: &str,
        owner: Option<&str>,
        need: Access,
        doing: &str,
    ) -> Result<()> {
        match self.level(kind, name, owner)? {
            None => Err(hidden(kind, name)),
            Some(Access::Read) if need == Access::Write => {
                Err(forbidden(&self.user, kind, name, doing))
            }
            Some(_) => Ok(()),
        }
    }
}

/// [`Guard::require`] when there is a user to check; `Ok` otherwise.
pub(crate) fn require_if(
    guard: Option<&Guard>,
    kind: ObjectKind,
    name: &str,
    owner: Option<&str>,
    need: Access,
    doing: &str,
) -> Result<()> {
    guard.map_or(Ok(()), |g| g.require(kind, name, owner, need, doing))
}

/// The policy: what a caller may do, checked against each object's owner
/// and the grants. Every verb of [`crate::Runtime`] goes through these.
impl Parts {
    /// The check for the caller's user, when users are checked.
    pub(crate) fn guard(&self, caller: &Caller) -> Option<Guard> {
        caller.user().map(|u| Guard {
            user: u.clone(),
            access: self.access.clone(),
        })
    }

    /// The owner (`creator`) of an object; `NotFound` when there is none
    /// of that name.
    pub(crate) fn owner(&self, kind: ObjectKind, name: &str) -> Result<Option<String>> {
        match kind {
            ObjectKind::Function => Ok(self.functions.deployment(name)?.creator.clone()),
            ObjectKind::Run => Ok(self.runs.load(name)?.creator),
            ObjectKind::Artifact => Ok(self.artifacts.get(name)?.creator),
            ObjectKind::Component => {
                self.functions.info(name)?;
                Ok(None)
            }
        }
    }

    /// Refuse unless the caller (when users are checked) has `need` on the
    /// object: `NotFound` when they may not see it (as when it does not
    /// exist), `Forbidden` when they may only read it. `doing` names the
    /// act. With no user there is nothing to check (not even that the
    /// object exists).
    pub(crate) fn require(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        name: &str,
        need: Access,
        doing: &str,
    ) -> Result<()> {
        match self.guard(caller) {
            Some(g) => g.require(kind, name, self.owner(kind, name)?.as_deref(), need, doing),
            None => Ok(()),
        }
    }

    /// Refuse a user who is not an administrator; `doing` names the act.
    pub(crate) fn require_admin(&self, caller: &Caller, doing: &str) -> Result<()> {
        match caller.user() {
            Some(u) if !u.admin => Err(Error::Forbidden {
                message: format!(
                    "user `{}` is not an administrator; {doing} needs one",
                    u.name
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Whose Runs a search by the caller may return: everyone's, or a
    /// user's own and those shared with them.
    pub(crate) fn run_visibility(&self, caller: &Caller) -> Result<Visible> {
        let Some(u) = caller.user().filter(|u| !u.admin) else {
            return Ok(Visible::All);
        };
        let index = self.access.index()?;
        let shared = index
            .iter()
            .filter(|((kind, _), grants)| {
                *kind == ObjectKind::Run && grants.iter().any(|(who, _)| *who == u.name)
            })
            .map(|((_, name), _)| name.clone())
            .collect();
        Ok(Visible::User {
            name: u.name.clone(),
            shared,
        })
    }

    /// Refuse unless the guard's user has `need` on Run `name`.
    pub(crate) fn require_run(
        &self,
        g: &Guard,
        name: &str,
        need: Access,
        doing: &str,
    ) -> Result<()> {
        let run = self.runs.load(name)?;
        g.require(ObjectKind::Run, name, run.creator.as_deref(), need, doing)
    }

    /// A test of what the caller may see, with the grants read once: for
    /// filtering a long list (of Runs, say) by `(kind, name, owner)`.
    pub(crate) fn visibility(
        &self,
        caller: &Caller,
    ) -> Result<impl Fn(ObjectKind, &str, Option<&str>) -> bool + use<>> {
        let index = match caller.user() {
            Some(u) if !u.admin => Some((u.clone(), self.access.index()?)),
            _ => None,
        };
        Ok(
            move |kind: ObjectKind, name: &str, owner: Option<&str>| match &index {
                None => true,
                Some((u, index)) => {
                    owner == Some(u.name.as_str())
                        || index
                            .get(&(kind, name.to_string()))
                            .is_some_and(|v| v.iter().any(|(who, _)| *who == u.name))
                }
            },
        )
    }

    /// Grant `with` access to an object. Only its owner (or an
    /// administrator, or the embedding program) may.
    pub(crate) fn share(
        &self,
        by: &Caller,
        kind: ObjectKind,
        name: &str,
        with: &str,
        access: Access,
    ) -> Result<()> {
        crate::validate_name("user", with)?;
        let owner = self.check_owner(by, kind, name, "share")?;
        if owner.as_deref() == Some(with) {
            return Err(Error::Invalid(format!(
                "`{with}` owns {kind} `{name}` already"
            )));
        }
        self.access.grant(kind, name, with, access)
    }

    /// Take back what `with` was granted on an object; whether they had
    /// anything. Only its owner (or an administrator) may.
    pub(crate) fn unshare(
        &self,
        by: &Caller,
        kind: ObjectKind,
        name: &str,
        with: &str,
    ) -> Result<bool> {
        crate::validate_name("user", with)?;
        self.check_owner(by, kind, name, "unshare")?;
        self.access.revoke(kind, name, Some(with))
    }

    /// The object's owner, once `by` is known to be it (or an admin).
    fn check_owner(
        &self,
        by: &Caller,
        kind: ObjectKind,
        name: &str,
        doing: &str,
    ) -> Result<Option<String>> {
        let owner = self.owner(kind, name)?;
        if let Some(g) = self.guard(by)
            && !g.user.admin
            && owner.as_deref() != Some(g.user.name.as_str())
        {
            // Those who may see it learn whose it is; others, nothing.
            g.require(kind, name, owner.as_deref(), Access::Read, doing)?;
            return Err(Error::Forbidden {
                message: format!(
                    "only the owner of {kind} `{name}` ({}) can {doing} it",
                    owner.as_deref().unwrap_or("an administrator")
                ),
            });
        }
        Ok(owner)
    }

    /// The grants the caller may know of: those on what they own and those
    /// given to them (every grant for an administrator or no user).
    pub(crate) fn shares(&self, caller: &Caller) -> Result<Vec<Share>> {
        let all = self.access.all()?;
        let Some(u) = caller.user().filter(|u| !u.admin) else {
            return Ok(all);
        };
        let mut owners: HashMap<Key, Option<String>> = HashMap::new();
        let mut out = Vec::new();
        for s in all {
            let owner = owners
                .entry((s.kind, s.name.clone()))
                .or_insert_with(|| self.owner(s.kind, &s.name).ok().flatten());
            if s.user == u.name || owner.as_deref() == Some(u.name.as_str()) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The named kinds of object called `name` that the caller may see.
    pub(crate) fn kinds_of(&self, caller: &Caller, name: &str) -> Vec<ObjectKind> {
        let guard = self.guard(caller);
        ObjectKind::NAMED
            .into_iter()
            .filter(|&k| match self.owner(k, name) {
                Ok(owner) => guard
                    .as_ref()
                    .is_none_or(|g| g.has(k, name, owner.as_deref(), Access::Read)),
                Err(_) => false,
            })
            .collect()
    }

    /// Delete a finished Run, a deployed name or an artifact; needs write
    /// access. A Run still running is refused (cancel it first). Deleting
    /// a name keeps the component and artifact bytes the recorded Runs
    /// refer to; it removes every grant on the object.
    pub(crate) fn delete(&self, caller: &Caller, kind: ObjectKind, name: &str) -> Result<()> {
        // Checked first so that only those who may delete it learn more
        // (that a Run is still running); checked again under the store's
        // lock, where the grants go.
        self.require(caller, kind, name, Access::Write, "deleting it")?;
        let guard = self.guard(caller);
        let check = |owner: Option<&str>| {
            require_if(
                guard.as_ref(),
                kind,
                name,
                owner,
                Access::Write,
                "deleting it",
            )?;
            // Grants go first: a crash before the object goes leaves it
            // with no grants (closed), never grants for whatever next takes
            // the name. Again after, for a share made in between.
            self.access.revoke(kind, name, None).map(|_| ())
        };
        match kind {
            ObjectKind::Run => self
                .runs
                .remove(name, &|c: &crate::RunConfig| check(c.creator.as_deref())),
            ObjectKind::Function => self
                .functions
                .remove(name, &|d: &crate::Deployment| check(d.creator.as_deref())),
            ObjectKind::Artifact => self
                .artifacts
                .remove(name, &|a: &crate::Artifact| check(a.creator.as_deref())),
            ObjectKind::Component => {
                return Err(Error::Invalid("components are not deleted by name".into()));
            }
        }?;
        self.access.revoke(kind, name, None)?;
        Ok(())
    }

    /// Lineage as the caller sees it: only the Runs and artifacts they may
    /// see appear in it; the object itself must be one of them.
    pub(crate) fn lineage(&self, caller: &Caller, name: &str) -> Result<crate::LineageNode> {
        let sees = self.visibility(caller)?;
        let sees_run = |name: &str, owner: Option<&str>| sees(ObjectKind::Run, name, owner);
        let mut node =
            crate::lineage::Graph::new(self.runs.index(), &self.artifacts, &sees_run).of(name)?;
        let Some(g) = self.guard(caller) else {
            return Ok(node);
        };
        let visible = |n: &crate::LineageNode| match n.kind {
            "artifact" => self.artifacts.get(&n.name).ok().is_some_and(|a| {
                g.has(
                    ObjectKind::Artifact,
                    &n.name,
                    a.creator.as_deref(),
                    Access::Read,
                )
            }),
            _ => true, // Runs were chosen above.
        };
        if !visible(&node) {
            return Err(hidden(ObjectKind::Artifact, name));
        }
        fn prune(n: &mut crate::LineageNode, keep: &dyn Fn(&crate::LineageNode) -> bool) {
            n.upstream.retain(|c| keep(c));
            n.downstream.retain(|c| keep(c));
            for c in n.upstream.iter_mut().chain(n.downstream.iter_mut()) {
                prune(c, keep);
            }
        }
        prune(&mut node, &visible);
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runtime;

    #[test]
    fn owners_share_and_users_get_what_they_were_given() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::open(dir.path()).unwrap();
        let (alice, bob) = (User::new("alice"), User::new("bob"));
        let (as_alice, as_bob) = (
            Caller::for_user(alice.clone()),
            Caller::for_user(bob.clone()),
        );
        let admin = User {
            name: "ops".into(),
            admin: true,
        };
        let as_admin = Caller::for_user(admin.clone());
        let art = ObjectKind::Artifact;
        rt.save_artifact(&as_alice, "model", b"v1").unwrap();
        assert_eq!(rt.owner(art, "model").unwrap().as_deref(), Some("alice"));
        assert_eq!(
            rt.access(&alice, art, "model").unwrap(),
            Some(Access::Write)
        );
        assert_eq!(rt.access(&bob, art, "model").unwrap(), None);
        assert_eq!(
            rt.access(&admin, art, "model").unwrap(),
            Some(Access::Write)
        );

        // Unseen: as if it did not exist for reading; for writing, the name
        // is taken and nothing more is said.
        let e = rt.load_artifact(&as_bob, "model", None).unwrap_err();
        assert_eq!(e.to_string(), "no artifact named `model`");
        let e = rt.save_artifact(&as_bob, "model", b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the artifact name `model` is taken by another user; choose another"
        );
        // Only the owner (or an admin) shares; a stranger learns nothing.
        let e = rt
            .share(&as_bob, art, "model", "bob", Access::Read)
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");

        rt.share(&as_alice, art, "model", "bob", Access::Read)
            .unwrap();
        assert_eq!(rt.load_artifact(&as_bob, "model", None).unwrap().0, b"v1");
        let e = rt.save_artifact(&as_bob, "model", b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "user `bob` has read access to artifact `model`; saving a new version needs write access"
        );
        let e = rt
            .share(&as_bob, art, "model", "carol", Access::Read)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "only the owner of artifact `model` (alice) can share it"
        );
        let e = rt
            .share(&as_alice, art, "model", "alice", Access::Read)
            .unwrap_err();
        assert_eq!(e.to_string(), "`alice` owns artifact `model` already");
        assert_eq!(
            rt.artifact(&Caller::host(), "model")
                .unwrap()
                .versions
                .len(),
            1,
            "nothing saved"
        );

        // Write access: a new version, still Alice's name.
        rt.share(&as_alice, art, "model", "bob", Access::Write)
            .unwrap();
        rt.save_artifact(&as_bob, "model", b"v2").unwrap();
        let a = rt.artifact(&Caller::host(), "model").unwrap();
        assert_eq!(a.creator.as_deref(), Some("alice"));
        assert_eq!(a.versions[1].saved_by.as_deref(), Some("bob"));
        let grant = Share {
            kind: art,
            name: "model".into(),
            user: "bob".into(),
            access: Access::Write,
        };
        assert_eq!(rt.shares(&as_alice).unwrap(), std::slice::from_ref(&grant));
        assert_eq!(rt.shares(&as_bob).unwrap(), [grant]);
        assert!(
            rt.shares(&Caller::for_user(User::new("carol")))
                .unwrap()
                .is_empty()
        );
        assert_eq!(rt.kinds_of(&as_bob, "model"), [ObjectKind::Artifact]);
        assert!(
            rt.kinds_of(&Caller::for_user(User::new("carol")), "model")
                .is_empty()
        );

        // Taken back, and gone with the object.
        assert!(rt.unshare(&as_alice, art, "model", "bob").unwrap());
        assert!(!rt.unshare(&as_alice, art, "model", "bob").unwrap());
        assert_eq!(rt.access(&bob, art, "model").unwrap(), None);
        rt.share(&as_admin, art, "model", "bob", Access::Read)
            .unwrap();
        let e = rt.delete(&as_bob, art, "model").unwrap_err();
        assert!(
            e.to_string().contains("deleting it needs write access"),
            "{e}"
        );
        rt.delete(&as_alice, art, "model").unwrap();
        assert!(
            rt.shares(&Caller::host()).unwrap().is_empty(),
            "its grants went with it"
        );
        rt.save_artifact(&Caller::for_user(User::new("carol")), "model", b"new")
            .unwrap();
        assert_eq!(rt.access(&bob, art, "model").unwrap(), None);
        // Without a user, the embedding program may do all.
        assert_eq!(
            rt.load_artifact(&Caller::host(), "model", None).unwrap().0,
            b"new"
        );
    }
}
