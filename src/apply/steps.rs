//! From a change to the ordered operations that carry it out. Pure.
//!
//! The kind's module (`kinds`) says which operations create, update or delete one of its
//! resources; this module only decides which of those a change needs: a replacement deletes
//! then creates, an adoption updates, a secret nobody holds is issued as if it did not exist.

use std::path::Path;

use crate::kinds::{self, Context, Intent, Operation, ResourceState};
use crate::plan::{Action, Change, Plan};
use crate::secrets;

/// The context of `plan` applied by an operator whose home is `home`: its project and
/// secret store, and the password policy it sets (or IAM's default minimum of 8).
pub fn context_of(plan: &Plan, home: Option<&Path>) -> Context {
    let minimum_password_length = kinds::planned_password_policy(
        plan.changes
            .iter()
            .filter_map(|c| c.after.as_ref().or(c.before.as_ref())),
    )
    .map_or(8, |policy| policy.minimum_length);
    Context {
        project: plan.project.clone(),
        secrets: plan.secrets,
        secrets_dir: secrets::expand_home(&plan.secrets_dir, home),
        home: home.map(Path::to_path_buf),
        minimum_password_length,
    }
}

/// The operations that carry out `change`, in order.
pub fn operations(change: &Change, context: &Context) -> Vec<Operation> {
    let name = change.address.name.as_str();
    // A secret nobody holds is issued as if it did not exist.
    let reissued = change
        .before
        .as_ref()
        .filter(|_| change.reissue_secret)
        .map(ResourceState::without_secret);
    let (before, after) = (
        reissued.as_ref().or(change.before.as_ref()),
        change.after.as_ref(),
    );
    let intent = Intent {
        adopt: change.action == Action::Adopt,
        reissue_secret: change.reissue_secret,
        empty_bucket: change.empty_bucket,
    };
    let mut ops = Vec::new();
    match change.action {
        Action::NoOp => {}
        Action::Create | Action::Replace | Action::Delete => {
            if change.action != Action::Create {
                if let Some(before) = before {
                    ops.extend(kinds::delete(name, before, &intent, context));
                }
            }
            if change.action != Action::Delete {
                if let Some(after) = after {
                    ops.extend(kinds::create(name, after, before, context));
                }
            }
        }
        Action::Update | Action::Adopt => {
            if let (Some(before), Some(after)) = (before, after) {
                ops.extend(kinds::update(name, before, after, &intent, context));
            }
        }
        Action::Forget => {
            if let (Some(before), Some(after)) = (before, after) {
                ops.extend(kinds::forget(name, before, after, context));
            }
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use super::*;
    use crate::kinds::bucket::BucketOp;
    use crate::kinds::instance::InstanceOp;
    use crate::kinds::record::RecordOp;
    use crate::kinds::{BucketState, InstanceState};
    use crate::model::{
        Address, Market, PublicAccessBlock, RunState, TAG_FORCE_DESTROY, TAG_GENERATION,
        TAG_PROJECT,
    };
    use crate::policy;
    use crate::spec::SecretsMode;

    fn test_context() -> Context {
        Context {
            project: "lab".into(),
            secrets: SecretsMode::ParameterStore,
            secrets_dir: PathBuf::from("/secrets"),
            home: Some(PathBuf::from("/home/ds")),
            minimum_password_length: 8,
        }
    }

    fn state(public: bool, force: bool) -> ResourceState {
        let mut tags = BTreeMap::from([(TAG_PROJECT.to_string(), "lab".to_string())]);
        if force {
            tags.insert(TAG_FORCE_DESTROY.to_string(), "true".to_string());
        }
        ResourceState::Bucket(BucketState {
            record: None,
            tags,
            policy: public.then(|| policy::document_of(policy::public_read_statement("b", "aws"))),
            public_access_block: Some(PublicAccessBlock::for_policy(public)),
        })
    }

    fn names(
        action: Action,
        before: Option<ResourceState>,
        after: Option<ResourceState>,
    ) -> Vec<&'static str> {
        // As the planner decides when the project's record shows it created the bucket.
        let empty_bucket = matches!(
            &before,
            Some(ResourceState::Bucket(b)) if b.tags.contains_key(TAG_FORCE_DESTROY)
        );
        let change = Change {
            address: Address::bucket("b"),
            action,
            reason: None,
            attributes: Vec::new(),
            before,
            after,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket,
        };
        bucket_operation_names(&change)
    }

    fn bucket_operation_names(change: &Change) -> Vec<&'static str> {
        operations(change, &test_context())
            .iter()
            .map(|op| match op {
                Operation::Bucket(op) => match op {
                    BucketOp::Record(RecordOp::Put { .. }) => "record",
                    BucketOp::Record(RecordOp::Delete { .. }) => "unrecord",
                    BucketOp::Create { .. } => "create",
                    BucketOp::PutTags { .. } => "tags",
                    BucketOp::PutPublicAccessBlock { .. } => "block",
                    BucketOp::PutPolicy { .. } => "policy",
                    BucketOp::DeletePolicy { .. } => "delete-policy",
                    BucketOp::Empty { .. } => "empty",
                    BucketOp::Delete { .. } => "delete",
                },
                other => other.describe(),
            })
            .collect()
    }

    #[test]
    fn operation_order_table() {
        type Case = (
            &'static str,
            Action,
            Option<ResourceState>,
            Option<ResourceState>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "create public",
                Action::Create,
                None,
                Some(state(true, false)),
                vec!["create", "record", "tags", "block", "policy"],
            ),
            (
                "create private",
                Action::Create,
                None,
                Some(state(false, false)),
                vec!["create", "record", "tags", "block"],
            ),
            (
                "going public loosens the block first",
                Action::Update,
                Some(state(false, false)),
                Some(state(true, false)),
                vec!["block", "policy"],
            ),
            (
                "going private drops the policy first",
                Action::Update,
                Some(state(true, false)),
                Some(state(false, false)),
                vec!["delete-policy", "block"],
            ),
            (
                "force_destroy flag is a tag change",
                Action::Update,
                Some(state(false, false)),
                Some(state(false, true)),
                vec!["tags"],
            ),
            (
                "delete keeps objects without force_destroy",
                Action::Delete,
                Some(state(false, false)),
                None,
                vec!["delete", "unrecord"],
            ),
            (
                "delete empties with force_destroy",
                Action::Delete,
                Some(state(true, true)),
                None,
                vec!["empty", "delete", "unrecord"],
            ),
            (
                "no-op does nothing",
                Action::NoOp,
                Some(state(true, false)),
                Some(state(true, false)),
                vec![],
            ),
        ];
        for (name, action, before, after, expected) in cases {
            assert_eq!(names(action, before, after), expected, "{name}");
        }
    }

    // Regression: anyone allowed to tag a bucket could add the project's tags and
    // `tether:force-destroy`, and the next apply emptied it. Without the planner's word (the
    // project's record, or the command line), deleting never empties.
    #[test]
    fn a_force_destroy_tag_alone_never_empties_a_bucket() {
        let change = Change {
            address: Address::bucket("b"),
            action: Action::Delete,
            reason: None,
            attributes: Vec::new(),
            before: Some(state(false, true)),
            after: None,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket: false,
        };
        assert_eq!(bucket_operation_names(&change), ["delete", "unrecord"]);
    }

    fn instance(instance_type: &str, state: RunState, root: i32) -> ResourceState {
        ResourceState::Instance(InstanceState {
            tags: BTreeMap::from([("tether:name".to_string(), "worker".to_string())]),
            ami: "ami-0abcdef1234567890".into(),
            instance_type: instance_type.into(),
            market: Market::OnDemand,
            max_price: None,
            key_pair: Some("lab-key".into()),
            security_groups: BTreeSet::from(["ssh".to_string()]),
            root_volume_gb: Some(root),
            volumes: BTreeMap::new(),
            user_data_sha256: None,
            instance_profile: None,
            state,
            generation: 1,
            user_data: None,
            image_lookup: None,
            id: None,
            public_ip: None,
            recorded: true,
            idle_stop: None,
            idle_watchdog: false,
        })
    }

    /// An instance with the watchdog, and the rule `after` minutes.
    fn idle(after: Option<u32>) -> ResourceState {
        let ResourceState::Instance(mut state) = instance("m5.large", RunState::Running, 50) else {
            unreachable!()
        };
        state.idle_watchdog = true;
        state.idle_stop = after.map(|after_minutes| crate::idle::IdleRule {
            after_minutes,
            cpu_below: None,
            ports: BTreeSet::from([22, 8888]),
        });
        ResourceState::Instance(state)
    }

    #[test]
    fn an_idle_rule_changes_in_its_tag_and_a_launch_carries_it() {
        let tags = |ops: &[Operation]| -> Vec<(BTreeMap<String, String>, Vec<String>)> {
            ops.iter()
                .filter_map(|op| match op {
                    Operation::Instance(crate::kinds::instance::InstanceOp::SetTags {
                        tags,
                        remove,
                        ..
                    }) => Some((tags.clone(), remove.clone())),
                    _ => None,
                })
                .collect()
        };
        let changed = instance_ops(Action::Update, Some(idle(Some(30))), Some(idle(Some(60))));
        assert_eq!(
            tags(&changed),
            [(
                BTreeMap::from([(
                    "tether:idle-stop".to_string(),
                    "after=60 ports=22,8888".to_string()
                )]),
                vec![]
            )]
        );
        let removed = instance_ops(Action::Update, Some(idle(Some(30))), Some(idle(None)));
        assert_eq!(
            tags(&removed),
            [(BTreeMap::new(), vec!["tether:idle-stop".to_string()])]
        );
        let launched = instance_ops(Action::Create, None, Some(idle(Some(30))));
        let Some(Operation::Instance(crate::kinds::instance::InstanceOp::Launch {
            launch, ..
        })) = launched.first()
        else {
            panic!("a launch first: {launched:?}");
        };
        assert!(launch.idle_watchdog);
        assert_eq!(
            launch.tags.get("tether:idle-stop").map(String::as_str),
            Some("after=30 ports=22,8888")
        );
        assert_eq!(
            launch.tags.get("tether:idle-watchdog").map(String::as_str),
            Some("1")
        );
    }

    fn instance_ops(
        action: Action,
        before: Option<ResourceState>,
        after: Option<ResourceState>,
    ) -> Vec<Operation> {
        let change = Change {
            address: crate::model::Address::new(crate::model::Kind::Instance, "worker"),
            action,
            reason: None,
            attributes: Vec::new(),
            before,
            after,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket: false,
        };
        let context = test_context();
        operations(&change, &context)
    }

    #[test]
    fn instance_operation_order_table() {
        type Case = (
            &'static str,
            Action,
            Option<ResourceState>,
            Option<ResourceState>,
            Vec<&'static str>,
        );
        use RunState::{Running, Stopped};
        let cases: Vec<Case> = vec![
            (
                "a stopped instance is launched, then stopped",
                Action::Create,
                None,
                Some(instance("m5.large", Stopped, 50)),
                vec![
                    "launching instance, then waiting until it runs",
                    "stopping instance, then waiting until it stops",
                ],
            ),
            (
                "a type change on a running instance stops, changes, starts",
                Action::Update,
                Some(instance("m5.large", Running, 50)),
                Some(instance("m5.xlarge", Running, 50)),
                vec![
                    "stopping instance, then waiting until it stops",
                    "changing instance type",
                    "starting instance, then waiting until it runs",
                ],
            ),
            (
                "a type change with a stop does not start it again",
                Action::Update,
                Some(instance("m5.large", Running, 50)),
                Some(instance("m5.xlarge", Stopped, 50)),
                vec![
                    "stopping instance, then waiting until it stops",
                    "changing instance type",
                ],
            ),
            (
                "the volume grows before the restart",
                Action::Update,
                Some(instance("m5.large", Stopped, 50)),
                Some(instance("m5.large", Running, 80)),
                vec![
                    "modifying volume",
                    "starting instance, then waiting until it runs",
                ],
            ),
            (
                "a replacement terminates, then launches",
                Action::Replace,
                Some(instance("m5.large", Running, 50)),
                Some(instance("m5.large", Running, 50)),
                vec![
                    "terminating instance, then waiting until it is gone",
                    "launching instance, then waiting until it runs",
                ],
            ),
        ];
        for (name, action, before, after, expected) in cases {
            let described: Vec<&str> = instance_ops(action, before, after)
                .iter()
                .map(Operation::describe)
                .collect();
            assert_eq!(described, expected, "{name}");
        }
    }

    /// A replacement is a new launch, counted in its generation tag.
    #[test]
    fn a_replacement_launches_the_next_generation() {
        let launch_of = |ops: Vec<Operation>| {
            ops.into_iter()
                .find_map(|op| match op {
                    Operation::Instance(InstanceOp::Launch { launch, .. }) => Some(launch),
                    _ => None,
                })
                .expect("a launch")
        };
        let created = launch_of(instance_ops(
            Action::Create,
            None,
            Some(instance("m5.large", RunState::Running, 50)),
        ));
        let replaced = launch_of(instance_ops(
            Action::Replace,
            Some(instance("m5.large", RunState::Running, 50)),
            Some(instance("m5.large", RunState::Running, 50)),
        ));
        assert_eq!(
            created.tags.get(TAG_GENERATION).map(String::as_str),
            Some("1")
        );
        assert_eq!(
            replaced.tags.get(TAG_GENERATION).map(String::as_str),
            Some("2")
        );
    }
}
