//! Reading the account: what exists that the spec names or the project owns (buckets, IAM
//! users, groups, roles and instance profiles, key pairs, security groups, instances and
//! Elastic IPs, Batch compute environments, queues and job definitions), and the account
//! singletons the spec declares.
//!
//! This is the shared half of reading: the service-wide listings, which listed resources
//! are relevant (owned or named), the concurrency and the join. Each kind turns what was
//! listed into its own state in its module (`kinds::<kind>::read`, next to its create,
//! update and delete), reading its own details there. Reads of independent resources run
//! concurrently (bounded). The result is plain data (`LiveState`) for the planner; this
//! module makes no decisions about it beyond which resources are relevant. It talks to AWS
//! only through `aws::Cloud`.

use std::collections::{BTreeMap, BTreeSet};

use std::future::Future;

use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use futures::FutureExt;

use crate::audit;
use crate::aws::{AwsError, AwsErrorKind, Cloud, IamEntity, InstanceInfo};
use crate::kinds::bucket::BucketRead;
use crate::kinds::{DesiredResource, LiveResource, LiveState, ResourceState};
use crate::model::{
    iam_path, ownership, Address, ImageCandidate, ImageLookup, InstanceRecord, Kind, Ownership,
    ACCOUNT_ALIAS, ACCOUNT_PASSWORD_POLICY, TAG_NAME, TAG_PROJECT,
};

/// How many resources are read at once (each with up to two reads in flight) from a near
/// endpoint. Measured against moto on the project's 2-core machines, 8 beats 16 and 32
/// (bench/RESULTS.md): more only adds contention there. A farther endpoint gets more, in
/// proportion to its round trip (`Cloud::in_flight`), up to `MOST_READS`.
const READ_CONCURRENCY: usize = 8;

/// The most resources read at once, however far the endpoint.
const MOST_READS: usize = 64;

/// How many buckets' reads are under way at once, most of them waiting for a pass of the
/// gate or for the tag index: enough that the gate, not this, is what bounds the calls.
const PENDING_BUCKETS: usize = 1024;

/// Reads run through a gate of the client's pace: as many at once as its distance and
/// throttled answers allow at the moment each starts (`aws::pace`).
trait Paced: Stream + Sized
where
    Self::Item: Future,
{
    /// Each read, to start only once the client's gate admits it.
    fn admitted(
        self,
        cloud: &Cloud,
    ) -> impl Stream<Item = impl Future<Output = <Self::Item as Future>::Output>> {
        let gate = std::sync::Arc::new(cloud.gate(READ_CONCURRENCY, MOST_READS));
        self.map(move |read| {
            let gate = std::sync::Arc::clone(&gate);
            async move {
                let _pass = gate.enter().await;
                read.await
            }
        })
    }

    /// The reads' results, in any order.
    fn paced(self, cloud: &Cloud) -> impl Stream<Item = <Self::Item as Future>::Output> {
        self.admitted(cloud).buffer_unordered(MOST_READS)
    }

    /// The reads' results, in the order of the reads.
    fn paced_in_order(self, cloud: &Cloud) -> impl Stream<Item = <Self::Item as Future>::Output> {
        self.admitted(cloud).buffered(MOST_READS)
    }
}

impl<S: Stream> Paced for S where S::Item: Future {}

/// Which resources to read.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Everything the project owns, plus these addresses whoever owns them (the spec's),
    /// where an index that shows what the spec expects may stand in for a call.
    Project(&'a [Address], &'a Expected),
    /// Exactly these addresses (to check a saved plan is still fresh, or what an apply
    /// made), each read with its own calls: an index lags behind a change just made. The
    /// `Expected` names only what is adopted by id, which no tag shows yet.
    Only(&'a [Address], &'a Expected),
    /// Every resource of these kinds that the listings show, whoever owns it (what
    /// `tether import` looks through); nothing of any other kind.
    Every(&'a [Kind]),
}

/// The names of one kind a scope reads besides the project's own: a set, or every one.
enum Names<'a> {
    Listed(BTreeSet<&'a str>),
    Every,
}

impl Names<'_> {
    fn contains(&self, name: &str) -> bool {
        match self {
            Names::Listed(names) => names.contains(name),
            Names::Every => true,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Names::Listed(names) => names.is_empty(),
            Names::Every => false,
        }
    }
}

/// What the spec wants of the resources it declares, where a reading can use it: a bucket
/// whose tags in the tag index are exactly the spec's is not asked for its tags again.
/// Any other answer of the index is checked with the bucket's own call, so a lagging index
/// never shows a change that is not there, nor hides a bucket it may delete. Also the
/// instances and addresses the spec adopts by id, which carry no tag of the project yet.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    bucket_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Instance id by name, for instances the spec adopts by id.
    instance_ids: BTreeMap<String, String>,
    /// Allocation id by name, for Elastic IPs the spec adopts.
    address_ids: BTreeMap<String, String>,
}

impl Expected {
    /// What `desired` expects.
    pub fn of(desired: &[DesiredResource]) -> Expected {
        let mut expected = Expected::adopting(
            desired
                .iter()
                .filter(|d| d.adopt)
                .map(|d| (&d.address, &d.state)),
        );
        for d in desired {
            if let ResourceState::Bucket(bucket) = &d.state {
                expected
                    .bucket_tags
                    .insert(d.address.name.clone(), bucket.tags.clone());
            }
        }
        expected
    }

    /// The instances and Elastic IPs that `adopted` (states that adopt) name by id.
    pub fn adopting<'a>(
        adopted: impl IntoIterator<Item = (&'a Address, &'a ResourceState)>,
    ) -> Expected {
        let mut expected = Expected::default();
        for (address, state) in adopted {
            let name = address.name.clone();
            match state {
                ResourceState::Instance(instance) => {
                    if let Some(id) = &instance.id {
                        expected.instance_ids.insert(name, id.clone());
                    }
                }
                ResourceState::ElasticIp(ip) => {
                    if let Some(id) = &ip.allocation_id {
                        expected.address_ids.insert(name, id.clone());
                    }
                }
                _ => {}
            }
        }
        expected
    }
}

/// Reads the live state of `project`'s resources in seven families, read at the same
/// time: buckets in the client's region, IAM users and groups, IAM roles and instance
/// profiles, key pairs and security groups, instances and Elastic IPs, AWS Batch, and the
/// account singletons the scope names.
pub async fn read(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<LiveState, AwsError> {
    let (buckets, iam, roles, ec2, instances, batch, account) = tokio::join!(
        read_buckets(cloud, project, scope),
        read_iam(cloud, project, scope),
        read_roles(cloud, project, scope),
        read_ec2(cloud, project, scope),
        read_instances(cloud, project, scope),
        read_batch(cloud, project, scope),
        read_account(cloud, project, scope),
    );
    // Errors are reported in a fixed order, not whichever came first.
    let (buckets, iam, roles, ec2, instances, batch, account) =
        (buckets?, iam?, roles?, ec2?, instances?, batch?, account?);
    let mut live = LiveState::default();
    for (resources, warnings) in [buckets, iam, roles, ec2, instances, batch, account] {
        live.resources
            .extend(resources.into_iter().map(|r| (r.address.clone(), r)));
        live.warnings.extend(warnings);
    }
    live.warnings.sort();
    Ok(live)
}

/// Resources found and warnings, from one family of reads.
type Found = (Vec<LiveResource>, Vec<String>);

/// The names of `kind` the scope names, and whether the scope is exactly those.
fn named(scope: Scope<'_>, kind: Kind) -> (Names<'_>, bool) {
    let (addresses, only) = match scope {
        Scope::Project(addresses, _) => (addresses, false),
        Scope::Only(addresses, _) => (addresses, true),
        Scope::Every(kinds) if kinds.contains(&kind) => return (Names::Every, true),
        Scope::Every(_) => return (Names::Listed(BTreeSet::new()), true),
    };
    let names = addresses
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.name.as_str())
        .collect();
    (Names::Listed(names), only)
}

/// Buckets in the client's region that the project owns (by tags) or the scope names.
///
/// For a whole project the tag index is asked alongside: a bucket it shows with exactly the
/// tags the spec expects needs no GetBucketTagging, and one neither named nor in the index
/// is not the project's. An index that is refused, fails or holds none of the project's
/// buckets (some setups and local endpoints do not index S3) is not trusted to mean "none":
/// every listed bucket is then asked for its tags, as without an index. The index's pages
/// come one after another; the named buckets' other reads do not wait for them.
async fn read_buckets(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (named_buckets, only) = named(scope, Kind::Bucket);
    if only && named_buckets.is_empty() {
        return Ok(Found::default());
    }
    let expected = match scope {
        Scope::Project(_, expected) => Some(expected),
        Scope::Only(..) | Scope::Every(_) => None,
    };
    let index = async {
        match expected {
            Some(_) => cloud
                .indexed_buckets(TAG_PROJECT, project)
                .await
                .ok()
                .filter(|indexed| !indexed.is_empty())
                .map(std::sync::Arc::new),
            None => None,
        }
    }
    .shared();
    let reads = async {
        let names: Vec<(bool, String)> = cloud
            .list_buckets()
            .await?
            .into_iter()
            .map(|name| (named_buckets.contains(name.as_str()), name))
            .filter(|(is_named, _)| *is_named || !only)
            .collect();
        // Every bucket's read is under way at once; the gate admits their calls as the
        // endpoint's distance allows, and none holds a pass while it waits for the index.
        let gate = &cloud.gate(READ_CONCURRENCY, MOST_READS);
        stream::iter(names)
            .map(|(is_named, name)| {
                let index = index.clone();
                async move {
                    if !is_named && index.clone().await.is_some_and(|i| !i.contains_key(&name)) {
                        return Ok(BucketRead::Irrelevant);
                    }
                    let tags = async {
                        let indexed = index.await;
                        let agreed = indexed.as_ref().and_then(|indexed| {
                            let tags = indexed.get(&name)?;
                            let wanted = expected?.bucket_tags.get(&name)?;
                            (is_named && tags == wanted).then(|| tags.clone())
                        });
                        match agreed {
                            Some(tags) => Ok(Some(tags)),
                            None => {
                                let _pass = gate.enter().await;
                                cloud.bucket_tags(&name).await
                            }
                        }
                    };
                    crate::kinds::bucket::read((cloud, gate), project, &name, is_named, tags).await
                }
            })
            .buffer_unordered(PENDING_BUCKETS)
            .try_collect::<Vec<BucketRead>>()
            .await
    };
    let (_, reads) = tokio::join!(index.clone(), reads);
    let mut found = Found::default();
    for read in reads? {
        match read {
            BucketRead::Found(resource) => found.0.push(*resource),
            BucketRead::Unreadable(warning) => found.1.push(warning),
            BucketRead::Irrelevant => {}
        }
    }
    Ok(found)
}

/// An account-wide listing, or, when the credentials may not make it and the spec names
/// nothing it would find, a warning in its place: limited credentials must not stop the
/// plan of a spec that does not use the family.
fn listed_or_skipped<T>(
    listing: Result<T, AwsError>,
    names_nothing: bool,
    family: &str,
) -> Result<Result<T, Found>, AwsError> {
    match listing {
        Ok(lists) => Ok(Ok(lists)),
        Err(error) if error.kind == AwsErrorKind::AccessDenied && names_nothing => Ok(Err((
            Vec::new(),
            vec![format!(
                "skipped {family}: they cannot be listed ({error}); those this project owns are not checked"
            )],
        ))),
        Err(error) => Err(error),
    }
}

/// IAM users and groups that the project owns (by path) or the scope names.
async fn read_iam(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (named_groups, only) = named(scope, Kind::IamGroup);
    let (named_users, _) = named(scope, Kind::IamUser);
    if only && named_groups.is_empty() && named_users.is_empty() {
        return Ok(Found::default());
    }
    let lists = tokio::try_join!(cloud.list_groups(), cloud.list_users());
    let names_nothing = named_groups.is_empty() && named_users.is_empty();
    let (groups, users) = match listed_or_skipped(lists, names_nothing, "IAM users and groups")? {
        Ok(lists) => lists,
        Err(skipped) => return Ok(skipped),
    };
    let owner_path = iam_path(project);
    let relevant = |entity: &IamEntity, named: &Names<'_>| {
        named.contains(entity.name.as_str()) || (!only && entity.path == owner_path)
    };
    let group_reads = stream::iter(groups.into_iter().filter(|g| relevant(g, &named_groups)))
        .map(|group| crate::kinds::iam_group::read(cloud, group))
        .paced(cloud)
        .try_collect::<Vec<_>>();
    let user_reads = stream::iter(users.into_iter().filter(|u| relevant(u, &named_users)))
        .map(|user| crate::kinds::iam_user::read(cloud, user))
        .paced(cloud)
        .try_collect::<Vec<_>>();
    let (mut resources, users) = tokio::try_join!(group_reads, user_reads)?;
    resources.extend(users);
    Ok((resources, Vec::new()))
}

/// IAM roles and instance profiles under the project's path, or that the scope names. One
/// adopted from elsewhere keeps its own path (IAM cannot change it) and is owned by its
/// tags: it is read while the spec names it, and left as it is once the spec drops it
/// (finding it otherwise would mean reading the tags of every role in the account).
async fn read_roles(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (named_roles, only) = named(scope, Kind::IamRole);
    let (named_profiles, _) = named(scope, Kind::InstanceProfile);
    if only && named_roles.is_empty() && named_profiles.is_empty() {
        return Ok(Found::default());
    }
    let lists = tokio::try_join!(cloud.list_roles(), cloud.list_instance_profiles());
    let names_nothing = named_roles.is_empty() && named_profiles.is_empty();
    let (roles, profiles) =
        match listed_or_skipped(lists, names_nothing, "IAM roles and instance profiles")? {
            Ok(lists) => lists,
            Err(skipped) => return Ok(skipped),
        };
    let owner_path = iam_path(project);
    let relevant = |name: &str, path: &str, named: &Names<'_>| {
        named.contains(name) || (!only && path == owner_path)
    };
    let role_reads = stream::iter(
        roles
            .into_iter()
            .filter(|r| relevant(&r.name, &r.path, &named_roles)),
    )
    .map(|role| async move { crate::kinds::iam_role::read(cloud, &role.name).await })
    .paced(cloud)
    .try_collect::<Vec<_>>();
    let profile_reads = stream::iter(
        profiles
            .into_iter()
            .filter(|p| relevant(&p.name, &p.path, &named_profiles)),
    )
    .map(|profile| async move {
        Ok::<_, AwsError>(Some(
            crate::kinds::instance_profile::read(cloud, profile).await?,
        ))
    })
    .paced(cloud)
    .try_collect::<Vec<_>>();
    let (roles, profiles) = tokio::try_join!(role_reads, profile_reads)?;
    let resources = roles.into_iter().chain(profiles).flatten().collect();
    Ok((resources, Vec::new()))
}

/// AWS Batch compute environments, job queues and job definitions (the newest active
/// revision of each name) that the project owns (by tags) or the scope names.
async fn read_batch(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (named_environments, only) = named(scope, Kind::BatchComputeEnvironment);
    let (named_queues, _) = named(scope, Kind::BatchJobQueue);
    let (named_definitions, _) = named(scope, Kind::BatchJobDefinition);
    let names_nothing =
        named_environments.is_empty() && named_queues.is_empty() && named_definitions.is_empty();
    if only && names_nothing {
        return Ok(Found::default());
    }
    let lists = tokio::try_join!(
        cloud.compute_environments(&[]),
        cloud.job_queues(&[]),
        cloud.job_definitions(None),
    );
    let (environments, queues, definitions) =
        match listed_or_skipped(lists, names_nothing, "AWS Batch resources")? {
            Ok(lists) => lists,
            Err(skipped) => return Ok(skipped),
        };
    let relevant = |name: &str, tags: &BTreeMap<String, String>, named: &Names<'_>| {
        named.contains(name) || (!only && ownership(tags, project) == Ownership::Owned)
    };
    let mut resources = Vec::new();
    let environments: Vec<_> = environments
        .into_iter()
        .filter(|ce| ce.status != "DELETED" && relevant(&ce.name, &ce.tags, &named_environments))
        .collect();
    if !environments.is_empty() {
        // Environments name their security groups by id; states, by name.
        let group_names: BTreeMap<String, String> = cloud
            .list_security_groups()
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
        resources.extend(
            environments
                .iter()
                .map(|ce| crate::kinds::batch_compute_environment::read(ce, &group_names)),
        );
    }
    for queue in queues
        .into_iter()
        .filter(|q| q.status != "DELETED" && relevant(&q.name, &q.tags, &named_queues))
    {
        resources.push(crate::kinds::batch_job_queue::read(queue));
    }
    // The newest active revision of each name stands for the definition.
    let mut newest: BTreeMap<String, crate::aws::JobDefinitionInfo> = BTreeMap::new();
    for definition in definitions {
        let newer = newest
            .get(&definition.name)
            .is_none_or(|seen| seen.revision < definition.revision);
        if newer {
            newest.insert(definition.name.clone(), definition);
        }
    }
    for definition in newest
        .into_values()
        .filter(|d| relevant(&d.name, &d.tags, &named_definitions))
    {
        resources.push(crate::kinds::batch_job_definition::read(&definition));
    }
    Ok((resources, Vec::new()))
}

/// Key pairs and the default VPC's security groups that the project owns (by tags) or the
/// scope names.
async fn read_ec2(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (named_keys, only) = named(scope, Kind::KeyPair);
    let (named_groups, _) = named(scope, Kind::SecurityGroup);
    if only && named_keys.is_empty() && named_groups.is_empty() {
        return Ok(Found::default());
    }
    let lists = tokio::try_join!(cloud.list_key_pairs(), cloud.list_security_groups());
    let names_nothing = named_keys.is_empty() && named_groups.is_empty();
    let (keys, groups) =
        match listed_or_skipped(lists, names_nothing, "key pairs and security groups")? {
            Ok(lists) => lists,
            Err(skipped) => return Ok(skipped),
        };
    let relevant =
        |name: &str, tags: &std::collections::BTreeMap<String, String>, named: &Names<'_>| {
            named.contains(name) || (!only && ownership(tags, project) == Ownership::Owned)
        };
    let mut resources = Vec::new();
    for key in keys
        .into_iter()
        .filter(|k| relevant(&k.name, &k.tags, &named_keys))
    {
        resources.push(crate::kinds::key_pair::read(key));
    }
    for group in groups
        .into_iter()
        .filter(|g| relevant(&g.name, &g.tags, &named_groups))
    {
        resources.push(crate::kinds::security_group::read(group));
    }
    Ok((resources, Vec::new()))
}

/// The project's instances and Elastic IPs (found by tags: they have no names in EC2), with
/// their volumes. Of the instances tagged with the project and a name, the project's is
/// the one its record names (`InstanceRecord`); any other is reported and left alone. A
/// name whose instances none is recorded shows its oldest, as not the project's (the
/// planner refuses it unless the spec adopts it).
async fn read_instances(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (named_instances, only) = named(scope, Kind::Instance);
    let (named_addresses, _) = named(scope, Kind::ElasticIp);
    let (named_alarms, _) = named(scope, Kind::IdleAlarm);
    if only && named_instances.is_empty() && named_addresses.is_empty() && named_alarms.is_empty() {
        return Ok(Found::default());
    }
    let lists = tokio::try_join!(
        cloud.project_instances(project, None),
        cloud.project_addresses(project, None),
    );
    let names_nothing = named_instances.is_empty() && named_addresses.is_empty();
    let (instances, addresses) =
        match listed_or_skipped(lists, names_nothing, "instances and Elastic IPs")? {
            Ok(lists) => lists,
            Err(skipped) => return Ok(skipped),
        };
    // What the spec adopts by id and the project's tags do not show: asked by id, and
    // taken only when no tether project owns it (the planner adopts it, or refuses).
    let (adopt_instances, adopt_addresses) = match scope {
        Scope::Project(_, expected) | Scope::Only(_, expected) => {
            (expected.instance_ids.clone(), expected.address_ids.clone())
        }
        Scope::Every(_) => Default::default(),
    };
    let untagged = |tags: &BTreeMap<String, String>| !tags.contains_key(TAG_PROJECT);
    let (adoptable_instances, adoptable_addresses) = tokio::try_join!(
        async {
            match adopt_instances.is_empty() {
                true => Ok(Vec::new()),
                false => {
                    let ids: Vec<String> = adopt_instances.values().cloned().collect();
                    cloud.instances(Some(&ids)).await
                }
            }
        },
        async {
            match adopt_addresses.is_empty() {
                true => Ok(Vec::new()),
                false => {
                    let ids: Vec<String> = adopt_addresses.values().cloned().collect();
                    cloud.addresses(Some(&ids)).await
                }
            }
        },
    )?;
    let mut warnings = Vec::new();
    let tagged_names: BTreeSet<String> = instances
        .iter()
        .filter_map(|instance| instance.tags.get(TAG_NAME).cloned())
        .collect();
    let records: BTreeMap<String, InstanceRecord> = stream::iter(tagged_names)
        .map(|name| async move {
            let record = cloud.instance_record(project, &name).await?;
            Ok::<_, AwsError>(record.map(|record| (name, record)))
        })
        .paced(cloud)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    // Per name: the instance shown, and whether the record names it.
    let mut by_name: BTreeMap<String, (InstanceInfo, bool)> = BTreeMap::new();
    let mut names_by_id: BTreeMap<String, String> = BTreeMap::new();
    let mut strays: Vec<(String, String)> = Vec::new();
    for instance in instances {
        let Some(name) = instance.tags.get(TAG_NAME).cloned() else {
            continue;
        };
        names_by_id.insert(instance.id.clone(), name.clone());
        let recorded = records.get(&name).is_some_and(|record| {
            record.identifies(&instance.id, instance.client_token.as_deref())
        });
        match by_name.remove(&name) {
            Some((kept, kept_recorded)) if kept_recorded || !recorded => {
                strays.push((name.clone(), instance.id));
                by_name.insert(name, (kept, kept_recorded));
            }
            Some((kept, _)) => {
                strays.push((name.clone(), kept.id));
                by_name.insert(name, (instance, recorded));
            }
            None => {
                by_name.insert(name, (instance, recorded));
            }
        }
    }
    for (name, id) in strays {
        warnings.push(format!(
            "instance.{name}: {id} carries this project's name tags, but the project has no record of launching it: tether leaves it alone (terminate it if it is a stray)"
        ));
    }
    for instance in adoptable_instances {
        let name = adopt_instances
            .iter()
            .find(|(_, id)| **id == instance.id)
            .map(|(name, _)| name.clone());
        if let Some(name) = name.filter(|n| !by_name.contains_key(n) && untagged(&instance.tags)) {
            names_by_id.insert(instance.id.clone(), name.clone());
            by_name.insert(name, (instance, false));
        }
    }
    let wanted = |name: &str, named: &Names<'_>| !only || named.contains(name);
    by_name.retain(|name, _| wanted(name, &named_instances));
    let volume_ids: Vec<String> = by_name
        .values()
        .flat_map(|(i, _)| i.devices.values().cloned())
        .collect();
    let ids: Vec<String> = by_name.values().map(|(i, _)| i.id.clone()).collect();
    let (volumes, profiles) =
        tokio::try_join!(cloud.volumes(volume_ids), cloud.instance_profiles(ids))?;
    for (instance, _) in by_name.values_mut() {
        instance.instance_profile = profiles.get(&instance.id).cloned();
    }
    let mut resources: Vec<LiveResource> = by_name
        .into_iter()
        .map(|(name, (instance, recorded))| {
            crate::kinds::instance::read(&name, instance, recorded, &volumes)
        })
        .collect();
    let mut address_names = BTreeSet::new();
    for address in addresses {
        let Some(name) = address.tags.get(TAG_NAME).cloned() else {
            continue;
        };
        if !wanted(&name, &named_addresses) {
            continue;
        }
        address_names.insert(name.clone());
        resources.push(crate::kinds::elastic_ip::read(&name, address, &names_by_id));
    }
    for address in adoptable_addresses {
        let name = adopt_addresses
            .iter()
            .find(|(_, id)| **id == address.allocation_id)
            .map(|(name, _)| name.clone());
        if let Some(name) = name.filter(|n| !address_names.contains(n) && untagged(&address.tags)) {
            resources.push(crate::kinds::elastic_ip::read(&name, address, &names_by_id));
        }
    }
    // Idle alarms, where there can be any: the spec declares one, or one of the project's
    // instances carries an idle rule or its watchdog (an alarm is made only with a rule).
    let rules_seen = resources.iter().any(|r| match &r.state {
        ResourceState::Instance(instance) => instance.idle_watchdog || instance.idle_stop.is_some(),
        _ => false,
    });
    if !named_alarms.is_empty() || (!only && rules_seen) {
        let prefix = crate::kinds::idle_alarm::alarm_prefix(project);
        let listing = cloud.alarms(&prefix).await;
        match listed_or_skipped(listing, named_alarms.is_empty(), "idle alarms")? {
            Ok(alarms) => {
                let stop_action = cloud.stop_action();
                for alarm in alarms {
                    let Some(found) =
                        crate::kinds::idle_alarm::read(project, alarm, &names_by_id, &stop_action)
                    else {
                        continue;
                    };
                    let owned = found.state.ownership(project) == Ownership::Owned;
                    if named_alarms.contains(found.address.name.as_str()) || (!only && owned) {
                        resources.push(found);
                    }
                }
            }
            Err((_, skipped)) => warnings.extend(skipped),
        }
    }
    Ok((resources, warnings))
}

/// The images each lookup matches, looked up concurrently.
pub async fn find_images(
    cloud: &Cloud,
    lookups: &[ImageLookup],
) -> Result<BTreeMap<String, Vec<ImageCandidate>>, AwsError> {
    stream::iter(lookups)
        .map(|lookup| async move { Ok((lookup.key(), cloud.find_images(lookup).await?)) })
        .paced(cloud)
        .try_collect()
        .await
}

/// The account alias and password policy, when the scope names them (singletons not in the
/// spec are none of tether's business), each with the project's record of how it came to
/// own it.
async fn read_account(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<Found, AwsError> {
    let (names, _) = named(scope, Kind::Account);
    let alias = async {
        match names.contains(ACCOUNT_ALIAS) {
            true => crate::kinds::account_alias::read(cloud, project).await,
            false => Ok(None),
        }
    };
    let password_policy = async {
        match names.contains(ACCOUNT_PASSWORD_POLICY) {
            true => crate::kinds::password_policy::read(cloud, project).await,
            false => Ok(None),
        }
    };
    let budget = async {
        let name = crate::model::budget_name(project);
        let (budgets, only) = named(scope, Kind::Budget);
        if budgets.contains(name.as_str()) {
            return crate::kinds::budget::read(cloud, project).await;
        }
        if only {
            return Ok(None);
        }
        // Not in the spec: read only where the project's record says it has one (to delete).
        let record = crate::parameters::budget_record_parameter(project, &name);
        match cloud.parameter(&record).await? {
            Some(_) => crate::kinds::budget::read(cloud, project).await,
            None => Ok(None),
        }
    };
    let (alias, password_policy, budget): (
        Option<LiveResource>,
        Option<LiveResource>,
        Option<LiveResource>,
    ) = tokio::try_join!(alias, password_policy, budget)?;
    Ok((
        alias
            .into_iter()
            .chain(password_policy)
            .chain(budget)
            .collect(),
        Vec::new(),
    ))
}

/// The managed policy ARNs that `desired` attaches and that do not exist, checked one
/// GetPolicy each (concurrently), so a typo is an error at plan time, not halfway through
/// an apply.
pub async fn missing_policies(
    cloud: &Cloud,
    desired: &[DesiredResource],
) -> Result<BTreeSet<String>, AwsError> {
    let arns: BTreeSet<&str> = desired.iter().flat_map(|d| d.state.policy_arns()).collect();
    let checks: Vec<(String, bool)> =
        stream::iter(arns)
            .map(|arn| async move {
                Ok::<_, AwsError>((arn.to_string(), cloud.policy_exists(arn).await?))
            })
            .paced(cloud)
            .try_collect()
            .await?;
    Ok(checks
        .into_iter()
        .filter(|(_, exists)| !exists)
        .map(|(arn, _)| arn)
        .collect())
}

/// Reads what `tether audit` checks, account-wide (and the buckets of the client's region).
pub async fn audit_facts(cloud: &Cloud) -> Result<audit::Facts, AwsError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let ((root_access_keys, root_mfa), users, password_policy, bucket_names, groups) = tokio::try_join!(
        cloud.root_user_facts(),
        cloud.list_users(),
        cloud.password_policy(),
        cloud.list_buckets(),
        cloud.list_security_groups(),
    )?;
    let users = stream::iter(users)
        .map(|user| async move {
            let (policies, console_access, mfa_devices, keys) = tokio::try_join!(
                cloud.user_policies(&user.name),
                cloud.has_login_profile(&user.name),
                cloud.mfa_device_count(&user.name),
                cloud.access_keys(&user.name),
            )?;
            Ok::<_, AwsError>(audit::UserFacts {
                attached_policies: policies.into_iter().collect(),
                console_access,
                mfa_devices,
                active_key_ages_days: keys
                    .iter()
                    .filter(|k| k.active)
                    .map(|k| k.created.map(|c| (now - c) / 86_400).unwrap_or_default())
                    .collect(),
                name: user.name,
            })
        })
        .paced_in_order(cloud)
        .try_collect();
    let buckets = stream::iter(bucket_names)
        .map(|name| async move {
            let policy = cloud.bucket_policy(&name).await?;
            Ok::<_, AwsError>((name, policy))
        })
        .paced_in_order(cloud)
        .try_collect();
    let (users, buckets) = tokio::try_join!(users, buckets)?;
    Ok(audit::Facts {
        root_access_keys,
        root_mfa,
        users,
        password_policy,
        buckets,
        security_groups: groups
            .into_iter()
            .map(|g| (g.name, g.ingress.into_iter().collect()))
            .collect(),
    })
}

/// What `tether import` may take in: every bucket of the client's region, IAM user and
/// group, key pair, security group of the default VPC (but `default`), instance and
/// Elastic IP, and the account's alias and password policy, of the families asked for,
/// read as a plan reads them (each kind's own `read`), with their ownership as found.
/// Instances and addresses, which have no names, are keyed by `import::instance_key` and
/// after their instance. Deciding what to take in is `import::select`'s.
pub async fn read_for_import(
    cloud: &Cloud,
    project: &str,
    families: &BTreeSet<crate::import::Family>,
) -> Result<LiveState, AwsError> {
    use crate::import::Family;
    let wants = |family| families.contains(&family);
    // Instances and addresses have no names to list them by: they are read below.
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|kind| !matches!(kind, Kind::Instance | Kind::ElasticIp))
        .filter(|kind| Family::of(*kind).is_some_and(wants))
        .collect();
    let mut live = read(cloud, project, Scope::Every(&kinds)).await?;
    // The default VPC's own group is no lab's to take in.
    live.resources
        .remove(&Address::new(Kind::SecurityGroup, "default"));
    if wants(Family::Ec2) {
        let (instances, elastic_ips) =
            tokio::try_join!(cloud.instances(None), cloud.addresses(None))?;
        let volume_ids: Vec<String> = instances
            .iter()
            .flat_map(|i| i.devices.values().cloned())
            .collect();
        let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        let (volumes, profiles) =
            tokio::try_join!(cloud.volumes(volume_ids), cloud.instance_profiles(ids))?;
        let mut taken = BTreeSet::new();
        let mut names_by_id = BTreeMap::new();
        for mut instance in instances {
            // The project's own and other projects' are keyed as they are tagged, so that
            // `import::select` can tell them.
            let name = match instance.tags.get(TAG_NAME) {
                Some(name) if instance.tags.contains_key(TAG_PROJECT) => name.clone(),
                _ => crate::import::instance_key(&instance.tags, &instance.id, &mut taken),
            };
            instance.instance_profile = profiles.get(&instance.id).cloned();
            names_by_id.insert(instance.id.clone(), name.clone());
            // Import never takes in what a tether project has tagged, recorded or not.
            let recorded = instance.tags.contains_key(TAG_PROJECT);
            let found = crate::kinds::instance::read(&name, instance, recorded, &volumes);
            live.resources.insert(found.address.clone(), found);
        }
        let mut address_names = BTreeSet::new();
        for address in elastic_ips {
            let name = match (address.tags.get(TAG_NAME), &address.instance_id) {
                (Some(name), _) if address.tags.contains_key(TAG_PROJECT) => name.clone(),
                (_, Some(id)) if names_by_id.contains_key(id) => {
                    format!("{}-ip", names_by_id[id])
                }
                _ => address.allocation_id.clone(),
            };
            let name = if address_names.insert(name.clone()) {
                name
            } else {
                address.allocation_id.clone()
            };
            let found = crate::kinds::elastic_ip::read(&name, address, &names_by_id);
            live.resources.insert(found.address.clone(), found);
        }
    }
    Ok(live)
}
