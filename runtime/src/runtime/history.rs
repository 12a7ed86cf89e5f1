//! The history verbs of [`Runtime`]: search, retention, the index of Runs
//! and the result cache's entries.

use super::Runtime;
use crate::access::{Access, ObjectKind};
use crate::config::RunConfig;
use crate::store::index::{RunPage, RunQuery};
use crate::{Caller, Result};

impl Runtime {
    /// Every Run's record the caller may see, oldest first: every page of
    /// [`Runtime::search`] with no filter. For a long history, search.
    pub fn runs(&self, caller: &Caller) -> Result<Vec<RunConfig>> {
        let mut q = RunQuery::default().limit(crate::MAX_PAGE);
        let mut all = Vec::new();
        loop {
            let page = self.search(caller, &q)?;
            all.extend(page.runs);
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        all.reverse();
        Ok(all)
    }

    /// One page of the Runs the caller may see that match `q`, newest
    /// first, answered from the index of Runs; each record is read from
    /// its folder.
    pub fn search(&self, caller: &Caller, q: &RunQuery) -> Result<RunPage> {
        let visible = self.parts.run_visibility(caller)?;
        let (known, next_cursor) = self.parts.runs.index().page(q, &visible)?;
        // The folder is the truth: a Run whose folder is gone, or whose
        // name another Run has taken since the row was written, is left out.
        let sees = self.parts.visibility(caller)?;
        let runs = known
            .iter()
            .filter_map(|k| self.parts.runs.load(&k.name).ok().map(|c| (k, c)))
            .filter(|(k, c)| {
                crate::runs::start_us(c) == k.start_us
                    && sees(ObjectKind::Run, &c.name, c.creator.as_deref())
            })
            .map(|(_, c)| c)
            .collect();
        Ok(RunPage { runs, next_cursor })
    }

    /// Remove the finished Runs `req` does not keep (and, when asked, the
    /// artifact versions and components nothing kept refers to); what was
    /// removed. A user removes only Runs they may write. Blocking: from
    /// async code, call it on a blocking thread.
    pub fn gc(&self, caller: &Caller, req: &crate::GcRequest) -> Result<crate::GcReport> {
        if req.artifacts || req.components {
            self.parts
                .require_admin(caller, "removing artifact versions and components")?;
        }
        crate::gc::gc(&self.parts, caller, req)
    }

    /// Index the Run folder `name` that was put in this runtime's runs
    /// folder from outside (a pulled Run), or drop its row if it has no
    /// folder.
    pub fn index_run(&self, name: &str) -> Result<()> {
        crate::validate_run_name(name)?;
        let runs = &self.parts.runs;
        runs.index()
            .reconcile(&[name.to_string()], &|n| runs.load(n))
    }

    /// Rebuild the index of Runs from the Run folders: how many Runs it
    /// holds. Not for a user who is not an administrator.
    pub fn reindex(&self, caller: &Caller) -> Result<usize> {
        self.parts
            .require_admin(caller, "rebuilding the index of Runs")?;
        let p = &self.parts;
        p.runs.index().reindex(&p.opts.root, p.runs.runs_dir())
    }

    /// Forget result-cache entries (of deployed name `function`, or all);
    /// the Runs stay. A user needs write access to the function; clearing
    /// every function's entries is for administrators. How many entries
    /// were forgotten.
    pub fn clear_cache(&self, caller: &Caller, function: Option<&str>) -> Result<usize> {
        match function {
            Some(f) => self.parts.require(
                caller,
                ObjectKind::Function,
                f,
                Access::Write,
                "clearing its cached results",
            )?,
            None => self
                .parts
                .require_admin(caller, "clearing every function's cached results")?,
        }
        let now = crate::store::index::search::to_micros(std::time::SystemTime::now());
        self.parts.cache.clear(function, now)?;
        self.parts.runs.index().clear_cache(function, now)
    }
}
