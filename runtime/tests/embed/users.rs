//! A user's Runs, checked inside the library: a Run made by a user's
//! caller is theirs, and another user can neither see nor cancel it.

use crate::util::*;
use rh_runtime::{CallRequest, Caller, Error, RunStatus, User};
use serde_json::json;

#[test]
fn a_users_run_is_theirs_and_another_user_can_neither_see_nor_cancel_it() {
    let d = tmp();
    let rt = runtime(d.path());
    let bob = Caller::for_user(User::new("bob"));
    let alice = Caller::for_user(User::new("alice"));
    deploy_as(&rt, &bob, "testkit");
    tokio().block_on(async {
        let run = rt
            .call(
                &bob,
                CallRequest::new("testkit/add", json!([1, 2])).run_name("bobs"),
            )
            .await
            .unwrap();
        assert_eq!(run.config().creator.as_deref(), Some("bob"));
        let err = rt.run(&alice, "bobs").unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert!(
            rt.runs(&alice).unwrap().iter().all(|c| c.name != "bobs"),
            "alice lists bob's Run"
        );
        let seen = rt.run(&bob, "bobs").unwrap();
        assert_eq!(seen.config().creator.as_deref(), Some("bob"));
        assert_eq!(seen.result().unwrap(), json!(3));

        // Running: alice's cancel is refused as if there were no such Run.
        let h = rt
            .start(
                &bob,
                CallRequest::new("testkit/spin", json!([])).run_name("bobs_spin"),
            )
            .await
            .unwrap();
        printed(&h, "spinning").await;
        let err = rt.cancel(&alice, "bobs_spin").await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        // A cancel that went through would have returned once the Run ended.
        assert_eq!(h.status().unwrap(), RunStatus::Running);
        assert_eq!(
            rt.run(&bob, "bobs_spin").unwrap().status(),
            RunStatus::Running
        );
        let run = rt.cancel(&bob, "bobs_spin").await.unwrap();
        assert_eq!(run.status(), RunStatus::Cancelled);
        assert_eq!(run.config().creator.as_deref(), Some("bob"));
    });
}
