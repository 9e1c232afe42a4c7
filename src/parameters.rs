//! The Parameter Store names of what tether keeps there that is no secret: the project's
//! ownership records (account settings, instances, buckets) and its lock, all under
//! `/tether/<project>/`. Secrets' names are `secrets`'s. Pure.

/// The Parameter Store name of the project's record of an account setting it owns
/// (`alias`, `password_policy`): `created` or `adopted`. Not a secret.
pub fn setting_record_parameter(project: &str, setting: &str) -> String {
    format!("/tether/{project}/account/{}", setting.replace('_', "-"))
}

/// The Parameter Store name of the project's record of which instance is its instance
/// `name` (`model::InstanceRecord`). Not a secret.
pub fn instance_record_parameter(project: &str, name: &str) -> String {
    format!("/tether/{project}/instances/{name}")
}

/// The Parameter Store name of the project's record that it created bucket `bucket`.
pub fn bucket_record_parameter(project: &str, bucket: &str) -> String {
    format!("/tether/{project}/buckets/{bucket}")
}

/// The Parameter Store name of the project's lock.
pub fn lock_parameter(project: &str) -> String {
    format!("/tether/{project}/lock")
}

/// The Parameter Store name of the project's record that it created (or adopted) its budget
/// `name` (AWS Budgets has no tags in every setup).
pub fn budget_record_parameter(project: &str, name: &str) -> String {
    format!("/tether/{project}/budgets/{name}")
}
