//! End-to-end tests of `tether cost`: Cost Explorer's figures come from moto (set through
//! its `/moto-api/static/ce/cost-and-usage-results`); the calls moto lacks (the forecast,
//! the cost allocation tag's status) from a scripted responder on loopback that answers
//! with AWS's documented shapes and hands GetCostAndUsage on to moto.

mod support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::http::{self, Request, Response};
use support::{run_tether, Moto};

const LAB_SPEC: &str = include_str!("../specs/lab.yaml");

/// Queues `results` in moto as the answers to the next GetCostAndUsage calls.
fn inject_costs(moto: &Moto, results: &Value) {
    let body = json!({ "results": results }).to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", moto.port)).expect("moto");
    write!(
        stream,
        "POST /moto-api/static/ce/cost-and-usage-results HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

/// A day as AWS answers a daily query grouped by service: no total, one group per service.
fn day(date: &str, next: &str, services: &[(&str, &str)], estimated: bool) -> Value {
    let groups: Vec<Value> = services
        .iter()
        .map(|(service, amount)| {
            json!({"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}})
        })
        .collect();
    json!({
        "TimePeriod": {"Start": date, "End": next},
        "Total": {},
        "Groups": groups,
        "Estimated": estimated
    })
}

/// The calls a stand-in was sent, each with its JSON body.
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// The Cost Explorer stand-in: the tag's status is `tag_status` (`None`: not listed), the
/// forecast `forecast` (`None`: DataUnavailable), GetCostAndUsage goes on to moto. Every
/// request's call and body are kept.
fn cost_explorer(
    moto: &Moto,
    tag_status: Option<&'static str>,
    forecast: Option<&'static str>,
) -> (u16, Calls) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    let moto_port = moto.port;
    let status = Mutex::new(tag_status);
    let port = http::serve(move |request: &Request| {
        kept.lock()
            .unwrap()
            .push((request.target().to_string(), request.json()));
        match request.target() {
            "GetCostAndUsage" => request.forward(moto_port),
            "ListCostAllocationTags" => {
                let tags: Vec<Value> = status
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|status| json!({"TagKey": "tether:project", "Type": "UserDefined", "Status": status}))
                    .collect();
                Response::json(200, &json!({"CostAllocationTags": tags}))
            }
            // Billing knows the key (listed, active or not): it becomes active.
            "UpdateCostAllocationTagsStatus" => {
                let mut status = status.lock().unwrap();
                if status.is_some() {
                    *status = Some("Active");
                    Response::json(200, &json!({"Errors": []}))
                } else {
                    Response::json(
                        200,
                        &json!({"Errors": [{"TagKey": "tether:project", "Code": "TagKeysNotFoundException", "Message": "Failed to update Cost Allocation Tag: tether:project"}]}),
                    )
                }
            }
            "GetCostForecast" => match forecast {
                Some(amount) => Response::json(
                    200,
                    &json!({
                        "Total": {"Amount": amount, "Unit": "USD"},
                        "ForecastResultsByTime": []
                    }),
                ),
                None => Response::json(
                    400,
                    &json!({"__type": "DataUnavailableException", "Message": "Insufficient amount of historical data to generate forecast."}),
                ),
            },
            other => Response::json(
                400,
                &json!({"__type": "UnknownOperationException", "Message": other}),
            ),
        }
    });
    (port, seen)
}

fn cost_env(moto: &Moto, cost_explorer: u16, today: &str) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.push((
        "AWS_ENDPOINT_URL_COST_EXPLORER".into(),
        format!("http://127.0.0.1:{cost_explorer}"),
    ));
    env.push(("TETHER_TEST_TODAY".into(), today.into()));
    env
}

#[test]
fn cost_json_gives_the_injected_days_exactly_with_the_forecast_and_the_tables_prediction() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!("{LAB_SPEC}budget:\n  monthly_usd: 200\n"),
    );
    let ec2 = "Amazon Elastic Compute Cloud - Compute";
    let s3 = "Amazon Simple Storage Service";
    inject_costs(
        &moto,
        &json!([{
            "ResultsByTime": [
                day("2026-11-01", "2026-11-02", &[(ec2, "4.6080000000"), (s3, "0.0101516483")], false),
                day("2026-11-02", "2026-11-03", &[(ec2, "1.1520000000")], false),
                day("2026-11-03", "2026-11-04", &[], true),
            ],
            "DimensionValueAttributes": []
        }]),
    );
    let (port, seen) = cost_explorer(&moto, Some("Active"), Some("123.45"));
    let env = cost_env(&moto, port, "2026-11-03");
    let run = run_tether(moto.dir.path(), &env, &["cost", "--json"]).expect_code(0);
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout alone");

    assert_eq!(report["format_version"], 1);
    assert_eq!(report["month"], "2026-11");
    let days: Vec<(&str, Value)> = report["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| (d["date"].as_str().unwrap(), d["amount"].clone()))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-11-01", json!("4.6181516483")),
            ("2026-11-02", json!("1.1520000000")),
            ("2026-11-03", json!("0")),
        ]
    );
    assert_eq!(report["days"][0]["services"][s3], "0.0101516483");
    assert_eq!(report["days"][2]["estimated"], true);
    assert_eq!(report["total"], "5.7701516483");
    assert_eq!(
        report["services"][0],
        json!({"service": ec2, "amount": "5.7600000000"})
    );
    assert_eq!(
        report["forecast"],
        json!({"first_day": "2026-11-04", "last_day": "2026-11-30", "amount": "123.45"})
    );
    assert_eq!(report["month_expected"], "129.2201516483");
    assert_eq!(report["tag"]["status"], "active");
    assert_eq!(report["budget_usd"], "200");
    // m5.xlarge running, its 50 GiB gp3 disk and one Elastic IP, from the shipped table.
    let per_day = report["predicted"]["per_day"]
        .as_f64()
        .expect("a prediction");
    let expected = 0.192 * 24.0 + 0.005 * 24.0 + 50.0 * 0.08 * 24.0 / 730.0;
    assert!((per_day - expected).abs() < 1e-9, "{per_day} vs {expected}");
    assert_eq!(report["predicted"]["prices_as_of"], "2025-01");

    // What tether asked: the project's tag, by day and service, and the rest of the month.
    let seen = seen.lock().unwrap();
    let (_, usage) = seen
        .iter()
        .find(|(call, _)| call == "GetCostAndUsage")
        .expect("GetCostAndUsage");
    assert_eq!(usage["Granularity"], "DAILY");
    assert_eq!(
        usage["TimePeriod"],
        json!({"Start": "2026-11-01", "End": "2026-11-04"})
    );
    assert_eq!(usage["Filter"]["Tags"]["Key"], "tether:project");
    assert_eq!(usage["Filter"]["Tags"]["Values"], json!(["dsi-lab"]));
    assert_eq!(
        usage["GroupBy"],
        json!([{"Type": "DIMENSION", "Key": "SERVICE"}])
    );
    let (_, forecast) = seen
        .iter()
        .find(|(call, _)| call == "GetCostForecast")
        .expect("GetCostForecast");
    assert_eq!(
        forecast["TimePeriod"],
        json!({"Start": "2026-11-04", "End": "2026-12-01"})
    );
    assert_eq!(forecast["Filter"]["Tags"]["Values"], json!(["dsi-lab"]));
}

#[test]
fn cost_says_plainly_when_the_tag_is_not_active_and_aws_has_no_figures_and_draws_days_on_a_terminal(
) {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!("{LAB_SPEC}budget:\n  monthly_usd: 40\n"),
    );
    let ec2 = "Amazon Elastic Compute Cloud - Compute";
    let october = json!({
        "ResultsByTime": [
            day("2026-10-01", "2026-10-02", &[(ec2, "8")], false),
            day("2026-10-02", "2026-10-03", &[(ec2, "2")], false),
        ],
        "DimensionValueAttributes": []
    });
    // One answer for each of the two questions below (moto hands them out in turn).
    inject_costs(&moto, &json!([october, october]));
    // A past month: no forecast is asked for; the tag is known to billing but inactive.
    let (port, seen) = cost_explorer(&moto, Some("Inactive"), None);
    let env = cost_env(&moto, port, "2026-11-15");
    let run = run_tether(moto.dir.path(), &env, &["cost", "--month", "2026-10"])
        .expect_code(0)
        .expect_stdout("2026-10-01  $8.00")
        .expect_stdout("So far: $10.00")
        .expect_stdout("Budget: $40.00 a month; 25% spent")
        .expect_stdout("is not an active cost allocation tag")
        .expect_stdout("AWS has no figures yet for 29 of the 31 days");
    assert!(
        !run.stdout.contains('█'),
        "no bars off a terminal: {}",
        run.stdout
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|(call, _)| call != "GetCostForecast"));

    // This month, on a terminal: the days are bars, the longest for the dearest day; AWS
    // cannot forecast yet, and says so.
    let (port, _) = cost_explorer(&moto, None, None);
    let mut env = cost_env(&moto, port, "2026-10-02");
    env.push(("COLUMNS".into(), "100".into()));
    let mut child = support::spawn_on_terminal(moto.dir.path(), &env, &["cost"]);
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("tether on a terminal");
    let screen = String::from_utf8_lossy(&output.stdout);
    let bar_of = |date: &str| {
        screen
            .lines()
            .find(|line| line.trim_start().starts_with(date))
            .map(|line| line.matches('█').count())
            .unwrap_or_default()
    };
    assert_eq!(bar_of("2026-10-01"), 30, "{screen}");
    assert_eq!(
        bar_of("2026-10-02"),
        7,
        "a quarter of the longest bar: {screen}"
    );
    assert!(screen.contains("billing has not seen the tag"), "{screen}");
    assert!(screen.contains("too little history"), "{screen}");

    run_tether(moto.dir.path(), &env, &["cost", "--month", "2026-13"])
        .expect_code(1)
        .expect_stderr("`2026-13` is not a month: write it as YYYY-MM");
    run_tether(moto.dir.path(), &env, &["cost", "--month", "2026-11"])
        .expect_code(1)
        .expect_stderr("2026-11 has not begun");
}

/// A Price List document of AWS's shape: one product with one on-demand price per `unit`.
fn price_document(attributes: Value, unit: &str, usd: &str) -> String {
    json!({
        "product": {"productFamily": "x", "attributes": attributes, "sku": "SKU1"},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {
            "sku": "SKU1",
            "priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
                "unit": unit, "pricePerUnit": {"USD": usd}, "description": "scripted"
            }}
        }}},
        "version": "20261201000000",
        "publicationDate": "2026-12-01T00:00:00Z"
    })
    .to_string()
}

/// The Price List stand-in: m5.xlarge at $0.214/h, gp3 at $0.088/GiB-month, a public IPv4
/// address at $0.0055/h, each only for the filters AWS would need to find it.
fn price_list() -> (u16, Calls) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    let port = http::serve(move |request: &Request| {
        let body = request.json();
        kept.lock()
            .unwrap()
            .push((request.target().to_string(), body.clone()));
        let filters: std::collections::BTreeMap<String, String> = body["Filters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                assert_eq!(f["Type"], "TERM_MATCH");
                (
                    f["Field"].as_str().unwrap().to_string(),
                    f["Value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let filter = |k: &str| filters.get(k).map(String::as_str);
        let documents = match (body["ServiceCode"].as_str(), filter("regionCode")) {
            (Some("AmazonEC2"), Some("us-east-1"))
                if filter("instanceType") == Some("m5.xlarge")
                    && filter("operatingSystem") == Some("Linux")
                    && filter("tenancy") == Some("Shared") =>
            {
                vec![price_document(
                    json!({"instanceType": "m5.xlarge"}),
                    "Hrs",
                    "0.2140000000",
                )]
            }
            (Some("AmazonEC2"), Some("us-east-1")) if filter("volumeApiName") == Some("gp3") => {
                vec![price_document(
                    json!({"volumeApiName": "gp3"}),
                    "GB-Mo",
                    "0.0880000000",
                )]
            }
            (Some("AmazonVPC"), Some("us-east-1")) => {
                vec![price_document(
                    json!({"group": "VPCPublicIPv4Address"}),
                    "Hrs",
                    "0.0055000000",
                )]
            }
            _ => vec![],
        };
        Response::json(
            200,
            &json!({"FormatVersion": "aws_v1", "PriceList": documents}),
        )
    });
    (port, seen)
}

#[test]
fn prices_refresh_reads_todays_prices_and_plan_and_cost_price_with_them_and_say_their_date() {
    let moto = Moto::start();
    // The lab's worker as a spot instance: its line shows the current spot price too.
    let spec = LAB_SPEC.replace(
        "    type: m5.xlarge\n",
        "    type: m5.xlarge\n    market: spot\n",
    );
    moto.write("tether.yaml", &spec);
    let (pricing, seen) = price_list();
    let mut env = moto.env();
    env.push((
        "AWS_ENDPOINT_URL_PRICING".into(),
        format!("http://127.0.0.1:{pricing}"),
    ));
    env.push(("TETHER_TEST_TODAY".into(), "2026-12-03".into()));
    let plan_json = |env: &[(String, String)]| -> Value {
        let run = run_tether(moto.dir.path(), env, &["plan", "--json"]).expect_code(0);
        serde_json::from_str::<Value>(&run.stdout).expect("plan JSON")["costs"].clone()
    };

    // Before: the shipped table, flagged as old.
    let costs = plan_json(&env);
    assert_eq!(costs["prices_as_of"], "2025-01");
    assert_eq!(costs["prices_stale"], true);
    assert_eq!(costs["instances"][0]["hourly"], 0.192);
    let text = run_tether(moto.dir.path(), &env, &["plan"]).expect_code(0);
    text.expect_stderr("Prices of 2025-01 are more than 30 days old: `tether prices refresh`");

    run_tether(moto.dir.path(), &env, &["prices", "refresh"])
        .expect_code(0)
        .expect_stderr("Prices of us-east-1 read 2026-12-03")
        .expect_stderr("1 instance types on-demand, 1 with a spot price now");
    let cache = moto.dir.path().join(".cache/tether/prices.json");
    let cached: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("the cache")).unwrap();
    assert_eq!(
        cached["regions"]["us-east-1"]["on_demand"]["m5.xlarge"],
        0.214
    );

    // After: today's prices, dated, not flagged; the spot price beside the ceiling.
    let costs = plan_json(&env);
    assert_eq!(costs["prices_as_of"], "2026-12-03");
    assert_eq!(costs["prices_stale"], false);
    assert_eq!(
        costs["price_sources"],
        json!([{"as_of": "2026-12-03", "source": "AWS Price List API and spot price history"}])
    );
    let worker = &costs["instances"][0];
    assert_eq!(
        worker["hourly"], 0.214,
        "the ceiling is the on-demand price"
    );
    assert!(worker["spot_now"].as_f64().expect("a spot price") > 0.0);
    let disks = worker["disks_monthly"].as_f64().unwrap();
    assert!((disks - 50.0 * 0.088).abs() < 1e-9, "{disks}");
    assert_eq!(costs["elastic_ips_hourly"], 0.0055);
    let text = run_tether(moto.dir.path(), &env, &["plan"]).expect_code(0);
    text.expect_stderr("prices: AWS Price List API and spot price history of 2026-12-03")
        .expect_stderr("at most $0.214/h, now $");

    // What was asked: Linux, shared tenancy, the spec's region.
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|(call, _)| call == "GetProducts"));
    assert!(seen
        .iter()
        .any(|(_, body)| body["Filters"].as_array().unwrap().contains(
            &json!({"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.xlarge"})
        )));

    // A cache that is not tether's is a warning, and the shipped table prices the plan.
    std::fs::write(&cache, "{ not json").unwrap();
    let run = run_tether(moto.dir.path(), &env, &["plan"]).expect_code(0);
    run.expect_stderr("are not tether's")
        .expect_stderr("prices: the table shipped with tether of 2025-01");
}

/// Calls `target` (`CreateBudget`) at moto with `body`, signed as `request` was (moto routes
/// by the credential scope in its Authorization header).
fn call_moto(request: &Request, moto_port: u16, target: &str, body: &Value) -> Response {
    let body = body.to_string();
    let headers: Vec<String> = request
        .headers
        .iter()
        .filter(|h| {
            let lower = h.to_ascii_lowercase();
            !lower.starts_with("content-length:") && !lower.starts_with("x-amz-target:")
        })
        .cloned()
        .chain([
            format!("X-Amz-Target: AWSBudgetServiceGateway.{target}\r\n"),
            format!("Content-Length: {}\r\n", body.len()),
        ])
        .collect();
    Request {
        line: "POST / HTTP/1.1\r\n".into(),
        headers,
        body: body.into_bytes(),
    }
    .forward(moto_port)
}

/// Subscribers by (budget, notification type, threshold).
type Subscribers = Arc<Mutex<std::collections::BTreeMap<(String, String, String), Vec<String>>>>;

fn notification_key(budget: &Value, notification: &Value) -> (String, String, String) {
    (
        budget.as_str().unwrap_or_default().to_string(),
        notification["NotificationType"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        notification["Threshold"].to_string(),
    )
}

/// AWS Budgets: moto for what it has (budgets, notifications); the subscribers of each
/// notification (DescribeSubscribersForNotification) and UpdateBudget, which moto lacks,
/// answered here as AWS documents them: UpdateBudget replaces the budget's definition and
/// keeps its notifications and subscribers.
fn budgets(moto: &Moto) -> (u16, Subscribers) {
    budgets_with(moto, || {})
}

/// `budgets`, calling `on_create` once a CreateBudget has reached moto and before its
/// answer goes back.
fn budgets_with(moto: &Moto, on_create: impl Fn() + Send + 'static) -> (u16, Subscribers) {
    let subscribers: Subscribers = Arc::new(Mutex::new(Default::default()));
    let kept = Arc::clone(&subscribers);
    let moto_port = moto.port;
    let port = http::serve(move |request: &Request| {
        let body = request.json();
        let addresses = |list: &Value| -> Vec<String> {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|s| s["Address"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        match request.target() {
            "CreateBudget" => {
                let name = &body["Budget"]["BudgetName"];
                for with in body["NotificationsWithSubscribers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    kept.lock().unwrap().insert(
                        notification_key(name, &with["Notification"]),
                        addresses(&with["Subscribers"]),
                    );
                }
                let answer = request.forward(moto_port);
                on_create();
                answer
            }
            "CreateNotification" => {
                kept.lock().unwrap().insert(
                    notification_key(&body["BudgetName"], &body["Notification"]),
                    addresses(&body["Subscribers"]),
                );
                request.forward(moto_port)
            }
            "DeleteNotification" => {
                kept.lock().unwrap().remove(&notification_key(
                    &body["BudgetName"],
                    &body["Notification"],
                ));
                request.forward(moto_port)
            }
            "DescribeSubscribersForNotification" => {
                let key = notification_key(&body["BudgetName"], &body["Notification"]);
                let found: Vec<Value> = kept
                    .lock()
                    .unwrap()
                    .get(&key)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| json!({"SubscriptionType": "EMAIL", "Address": a}))
                    .collect();
                Response::json(200, &json!({"Subscribers": found}))
            }
            "UpdateBudget" => {
                let account = &body["AccountId"];
                let new = &body["NewBudget"];
                let name = &new["BudgetName"];
                let described = call_moto(
                    request,
                    moto_port,
                    "DescribeNotificationsForBudget",
                    &json!({"AccountId": account, "BudgetName": name}),
                );
                let notifications: Value =
                    serde_json::from_slice(described.bytes.as_deref().unwrap_or_default())
                        .unwrap_or_default();
                let with: Vec<Value> = notifications["Notifications"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| {
                        let subscribers: Vec<Value> = kept
                            .lock()
                            .unwrap()
                            .get(&notification_key(name, n))
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|a| json!({"SubscriptionType": "EMAIL", "Address": a}))
                            .collect();
                        json!({"Notification": n, "Subscribers": subscribers})
                    })
                    .collect();
                call_moto(
                    request,
                    moto_port,
                    "DeleteBudget",
                    &json!({"AccountId": account, "BudgetName": name}),
                );
                call_moto(
                    request,
                    moto_port,
                    "CreateBudget",
                    &json!({"AccountId": account, "Budget": new, "NotificationsWithSubscribers": with}),
                );
                Response::json(200, &json!({}))
            }
            _ => request.forward(moto_port),
        }
    });
    (port, subscribers)
}

/// `moto`'s environment with Cost Explorer and Budgets at their stand-ins' ports.
fn budget_env(moto: &Moto, cost_explorer: u16, budgets: u16) -> Vec<(String, String)> {
    let mut env = moto.env();
    for (name, port) in [
        ("AWS_ENDPOINT_URL_COST_EXPLORER", cost_explorer),
        ("AWS_ENDPOINT_URL_BUDGETS", budgets),
    ] {
        env.push((name.into(), format!("http://127.0.0.1:{port}")));
    }
    env
}

/// A Budgets client talking to moto directly.
fn budgets_client(moto: &Moto) -> aws_sdk_budgets::Client {
    let config = aws_sdk_budgets::Config::builder()
        .behavior_version(aws_sdk_budgets::config::BehaviorVersion::latest())
        .region(aws_sdk_budgets::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{}", moto.port))
        .credentials_provider(aws_sdk_budgets::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_budgets::Client::from_conf(config)
}

/// A budget as read back: its limit, its tag filter, its notifications (type, threshold).
type ReadBudget = (String, Value, Vec<(String, f64)>);

/// The budget as moto holds it, read through the SDK: limit, filter, notifications.
fn read_budget(moto: &Moto, name: &str) -> Option<ReadBudget> {
    let client = budgets_client(moto);
    support::block_on(async {
        let budget = match client
            .describe_budget()
            .account_id("123456789012")
            .budget_name(name)
            .send()
            .await
        {
            Ok(out) => out.budget().cloned()?,
            Err(_) => return None,
        };
        // `null` for a budget without a tag filter.
        let filter = budget.filter_expression().and_then(|e| e.tags()).map_or(Value::Null, |tags| {
            json!({"key": tags.key(), "values": tags.values(), "match": tags.match_options().iter().map(|m| m.as_str()).collect::<Vec<_>>()})
        });
        let mut notifications: Vec<(String, f64)> = client
            .describe_notifications_for_budget()
            .account_id("123456789012")
            .budget_name(name)
            .send()
            .await
            .expect("notifications")
            .notifications()
            .iter()
            .map(|n| (n.notification_type().as_str().to_string(), n.threshold()))
            .collect();
        notifications.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let limit = budget
            .budget_limit()
            .map(|l| l.amount().to_string())
            .unwrap_or_default();
        Some((limit, filter, notifications))
    })
}

#[test]
fn a_budget_is_created_with_its_filter_limit_and_alerts_updated_in_place_and_gone_after_destroy() {
    let moto = Moto::start();
    let spec = |limit: &str, alerts: &str, notify: &str| {
        format!(
            "project: lab-budget\nregion: us-east-1\nbudget:\n  monthly_usd: {limit}\n  alert_at: {alerts}\n  forecast_alert: true\n  notify: {notify}\n"
        )
    };
    moto.write(
        "tether.yaml",
        &spec("100", "[80, 100]", "[alice@example.com]"),
    );
    let (ce, ce_calls) = cost_explorer(&moto, Some("Inactive"), None);
    let (budgets_port, subscribers) = budgets(&moto);
    let env = budget_env(&moto, ce, budgets_port);
    let tether = |args: &[&str]| run_tether(moto.dir.path(), &env, args);
    let name = "tether-lab-budget";

    tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("+ budget.tether-lab-budget");
    let (limit, filter, notifications) = read_budget(&moto, name).expect("the budget");
    assert_eq!(limit, "100");
    assert_eq!(
        filter,
        json!({"key": "tether:project", "values": ["lab-budget"], "match": ["EQUALS"]})
    );
    assert_eq!(
        notifications,
        [
            ("ACTUAL".to_string(), 80.0),
            ("ACTUAL".to_string(), 100.0),
            ("FORECASTED".to_string(), 100.0)
        ]
    );
    assert!(subscribers
        .lock()
        .unwrap()
        .values()
        .all(|s| s == &["alice@example.com"]));
    assert!(
        ce_calls
            .lock()
            .unwrap()
            .iter()
            .any(|(call, body)| call == "UpdateCostAllocationTagsStatus"
                && body["CostAllocationTagsStatus"]
                    == json!([{"TagKey": "tether:project", "Status": "Active"}])),
        "the project's tag is activated for the budget"
    );
    tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");

    // A new limit, one alert instead of two, a second address: in place.
    moto.write(
        "tether.yaml",
        &spec("150", "[90]", "[alice@example.com, bob@example.com]"),
    );
    tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("~ budget.tether-lab-budget");
    let (limit, _, notifications) = read_budget(&moto, name).expect("the budget");
    assert_eq!(limit, "150");
    assert_eq!(
        notifications,
        [
            ("ACTUAL".to_string(), 90.0),
            ("FORECASTED".to_string(), 100.0)
        ]
    );
    assert!(subscribers
        .lock()
        .unwrap()
        .values()
        .all(|s| s == &["alice@example.com", "bob@example.com"]));
    tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");

    // A lab that costs more a month than the budget: the plan says so.
    let lab = LAB_SPEC.replace("project: dsi-lab", "project: lab-budget");
    moto.write(
        "tether.yaml",
        &format!("{lab}budget:\n  monthly_usd: 100\n"),
    );
    tether(&["plan"])
        .expect_code(0)
        .expect_stderr("over the budget's $100");

    // Dropped from the spec: found by the project's record, and deleted.
    moto.write("tether.yaml", "project: lab-budget\nregion: us-east-1\n");
    tether(&["plan"])
        .expect_code(0)
        .expect_stderr("- budget.tether-lab-budget  (delete: no longer in the spec)");

    moto.write(
        "tether.yaml",
        &spec("150", "[90]", "[alice@example.com, bob@example.com]"),
    );
    tether(&["destroy", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("- budget.tether-lab-budget");
    assert_eq!(read_budget(&moto, name), None);
    assert_eq!(
        support::parameter(&moto.ssm(), "/tether/lab-budget/budgets/tether-lab-budget"),
        None,
        "the record goes with it"
    );
}

#[test]
fn a_budget_of_the_projects_name_that_tether_did_not_make_is_refused_until_adopted() {
    let moto = Moto::start();
    let (ce, _) = cost_explorer(&moto, Some("Active"), None);
    let (budgets_port, _) = budgets(&moto);
    // Made by hand in the console: the project's budget name, no record of tether's.
    let client = budgets_client(&moto);
    support::block_on(async {
        let limit = aws_sdk_budgets::types::Spend::builder()
            .amount("50")
            .unit("USD")
            .build()
            .unwrap();
        let budget = aws_sdk_budgets::types::Budget::builder()
            .budget_name("tether-lab-hand")
            .budget_limit(limit)
            .time_unit(aws_sdk_budgets::types::TimeUnit::Monthly)
            .budget_type(aws_sdk_budgets::types::BudgetType::Cost)
            .build()
            .unwrap();
        client
            .create_budget()
            .account_id("123456789012")
            .budget(budget)
            .send()
            .await
            .expect("a budget made by hand")
    });
    let spec = "project: lab-hand\nregion: us-east-1\nbudget:\n  monthly_usd: 80\n";
    moto.write("tether.yaml", spec);
    let env = budget_env(&moto, ce, budgets_port);
    let tether = |args: &[&str]| run_tether(moto.dir.path(), &env, args);
    tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("budget.tether-lab-hand exists but is not owned by project `lab-hand`")
        .expect_stderr("--> tether.yaml:3:1");
    assert_eq!(
        read_budget(&moto, "tether-lab-hand")
            .map(|b| b.0)
            .as_deref(),
        Some("50")
    );

    moto.write(
        "tether.yaml",
        &spec.replace("monthly_usd: 80\n", "monthly_usd: 80\n  adopt: true\n"),
    );
    tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("& budget.tether-lab-hand");
    assert_eq!(
        read_budget(&moto, "tether-lab-hand")
            .map(|b| b.0)
            .as_deref(),
        Some("80")
    );
    tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
}

// Regression: the record was written after CreateBudget, so a run killed between the two
// left a budget of the project's name that no record vouched for, and every later apply
// refused it as someone else's until a human adopted it.
#[test]
fn a_run_killed_right_after_making_the_budget_is_completed_by_the_next_apply() {
    let moto = Moto::start();
    let (ce, _) = cost_explorer(&moto, Some("Active"), None);
    let (created_tx, created) = std::sync::mpsc::channel::<()>();
    let (killed, killed_rx) = std::sync::mpsc::channel::<()>();
    let (killed_rx, first) = (
        Mutex::new(killed_rx),
        std::sync::atomic::AtomicBool::new(true),
    );
    let (budgets_port, _) = budgets_with(&moto, move || {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            created_tx.send(()).unwrap();
            // The answer goes back only once the run that asked is dead.
            let _ = killed_rx.lock().unwrap().recv();
        }
    });
    moto.write(
        "tether.yaml",
        "project: lab-crash\nregion: us-east-1\nbudget:\n  monthly_usd: 30\n  alert_at: [100]\n  notify: [alice@example.com]\n",
    );
    let env = budget_env(&moto, ce, budgets_port);
    let mut run = support::spawn_tether(moto.dir.path(), &env, &["apply", "--auto-approve"]);
    created
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the run makes the budget");
    run.kill().expect("kill -9 the run");
    run.wait().expect("reap it");
    killed.send(()).unwrap();
    assert_eq!(
        read_budget(&moto, "tether-lab-crash")
            .map(|b| b.0)
            .as_deref(),
        Some("30")
    );

    run_tether(moto.dir.path(), &env, &["apply", "--auto-approve"]).expect_code(0);
    run_tether(moto.dir.path(), &env, &["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
}
