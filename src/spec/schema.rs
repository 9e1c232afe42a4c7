//! The spec's JSON Schema (draft 2020-12), derived with schemars from the very types the
//! parser reads (`Raw*`): their doc comments are the descriptions, `deny_unknown_fields`
//! becomes `additionalProperties: false`, and the patterns below restate, for editors,
//! what the checks enforce where a regular expression can say it. The checks stay the
//! authority (they also know what a pattern cannot: cross-references, policy documents,
//! Fargate's sizes); a test keeps the patterns and the checks in agreement on examples.
//!
//! Patterns use only what ECMA-262 and Python's `re` share (yaml-language-server and
//! `check-jsonschema` both read them).

use schemars::generate::SchemaSettings;

/// What `forget:` entries look like, for editors (`check_forget` is the authority).
pub(super) const FORGET_ADDRESS: &str =
    "^(bucket|iam_group|iam_user|key_pair|security_group|instance|elastic_ip|account|budget)\\..+$";

pub(super) const INSTANCE_ID: &str = "^i-([0-9a-f]{8}|[0-9a-f]{17})$";
pub(super) const ALLOCATION_ID: &str = "^eipalloc-([0-9a-f]{8}|[0-9a-f]{17})$";
pub(super) const PROJECT: &str = "^[A-Za-z0-9_-]{1,64}$";
pub(super) const REGION: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+$";
/// S3's general purpose bucket rules: 3-63 lower-case letters, digits, `.` and `-`, a
/// letter or digit at each end, no `..`, not an IP address, no reserved prefix or suffix.
pub(super) const BUCKET: &str = r"^(?!xn--|sthree-|amzn-s3-demo-)(?!.*\.\.)(?![0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$)(?!.*(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
pub(super) const ACCOUNT_ALIAS: &str = "^(?![0-9]{12}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$";
pub(super) const IAM_USER_OR_ROLE: &str = "^[A-Za-z0-9+=,.@_-]{1,64}$";
pub(super) const IAM_GROUP: &str = "^[A-Za-z0-9+=,.@_-]{1,128}$";
pub(super) const MANAGED_POLICY_ARN: &str =
    "^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,128}$";
pub(super) const SERVICE_PRINCIPAL: &str = r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?$";
pub(super) const CIDR: &str = r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$";
/// An idle rule's duration: minutes or hours (the range is the checks').
pub(super) const IDLE_DURATION: &str = r"^[0-9]+(m|h)$";
pub(super) const INSTANCE_TYPE: &str = r"^[a-z]([a-z0-9-]*[a-z0-9])?\.[a-z0-9]+$";
pub(super) const AMI_ID: &str = "^ami-([0-9a-f]{8}|[0-9a-f]{17})$";
pub(super) const IMAGE_OWNER: &str = "^(self|amazon|aws-marketplace|[0-9]{12})$";
pub(super) const DEVICE: &str = "^/dev/(sd|xvd)[a-z][a-z0-9]*$";
pub(super) const PRICE: &str = r"^(?=.*[1-9])[0-9]+(\.[0-9]+)?$";
pub(super) const BATCH_NAME: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$";

/// A tag key: 1 to 128 characters, not starting with `aws:` (in any case) or `tether:`.
const TAG_KEY: &str = r"^(?![Aa][Ww][Ss]:|tether:)[\s\S]{1,128}$";

/// Every `tags:` mapping: at most 47 tags (AWS's 50 less tether's own), keys as
/// `TAG_KEY`, values up to 256 characters.
pub(super) fn tags(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": super::MAX_USER_TAGS,
        "propertyNames": {"pattern": TAG_KEY},
        "additionalProperties": {"type": "string", "maxLength": 256},
    })
}

/// The spec's JSON Schema, as `tether schema` prints it and `schema/` holds it.
pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<super::RawSpec>();
    let mut value = serde_json::to_value(schema).expect("a schema serialises");
    if let Some(object) = value.as_object_mut() {
        // Read top-down: what the document is, its keys, then the definitions they use.
        object.insert("title".into(), "tether spec".into());
        let mut ordered = serde_json::Map::new();
        for key in [
            "$schema",
            "title",
            "description",
            "type",
            "required",
            "properties",
            "additionalProperties",
        ] {
            if let Some(entry) = object.remove(key) {
                ordered.insert(key.into(), entry);
            }
        }
        let definitions = object.remove("$defs");
        ordered.extend(std::mem::take(object));
        if let Some(definitions) = definitions {
            ordered.insert("$defs".into(), definitions);
        }
        *object = ordered;
    }
    value
}

/// The schema as committed: pretty JSON with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a schema serialises");
    text.push('\n');
    text
}
