//! Python statements as a Run: the verbs of [`Runtime`] over the
//! interpreter deployed as `python` (see [`crate::python`]).

use super::Runtime;
use crate::call::CallRequest;
use crate::claim::new_run;
use crate::handle::RunHandle;
use crate::plan::Plan;
use crate::{Caller, Result, Run, execute};

impl Runtime {
    /// Run Python statements in order in one interpreter (deployed as
    /// `python`, see [`crate::python`]), as one command Run whose `cmds`
    /// are the statements; `req` gives the Run's name, limits, tags and
    /// output observer (its function and arguments are set here). A
    /// statement that raises ends the Run `error` / `python_exception`,
    /// and the statements after it are skipped unless `keep_going`.
    pub async fn run_python(
        &self,
        caller: &Caller,
        statements: Vec<String>,
        keep_going: bool,
        req: CallRequest,
    ) -> Result<Run> {
        let plan = Plan::python(&self.parts, caller, statements, keep_going, req).await?;
        let claimed = new_run(&self.parts, &plan, "; rerun to replace it").await?;
        execute::run_to_end(&self.parts, plan, claimed).await
    }

    /// [`Runtime::run_python`], returning at once with a handle on its Run.
    pub async fn start_python(
        &self,
        caller: &Caller,
        statements: Vec<String>,
        keep_going: bool,
        req: CallRequest,
    ) -> Result<RunHandle> {
        let plan = Plan::python(&self.parts, caller, statements, keep_going, req).await?;
        let claimed = new_run(&self.parts, &plan, "; rerun to replace it").await?;
        let handle = self.handle_of(&claimed.config.name);
        execute::start(&self.parts, plan, claimed)?;
        Ok(handle)
    }
}
