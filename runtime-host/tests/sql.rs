//! The `sql` capability and the SQL Database node, on SQLite (a file),
//! PostgreSQL and MariaDB (a fresh database per test each): reads, typed
//! values, writes refused by the database on read-only databases (and
//! session tricks that do not outlive their call), one statement per call,
//! the row cap, SQLite's bounds on memory and PRAGMAs, slow statements
//! stopped at the run's deadline (and stopped on the server too),
//! allow-listed names only, tenants, and SaaS Pricing's agent calling the
//! SQL node as a tool against the model server.
//!
//! PostgreSQL is reached at `SANDFLOW_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), MariaDB at
//! `SANDFLOW_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::{
    CapabilityConfig, FlowComponent, Limits, LlmConfig, RunContext, RunError, RunOutcome, RunRequest, Runtime,
    RuntimeConfig, SqlConfig, Value,
};
use serde_json::{Value as Json, json};
use sqlx::{Connection, Executor, Row};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sqlite,
    Postgres,
    MariaDb,
}

/// A database for one test, seeded with `plans` (ten rows), dropped after.
struct TestDb {
    kind: Kind,
    url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

const SEED: &[&str] = &[
    "CREATE TABLE plans (name VARCHAR(50) NOT NULL, price NUMERIC(10, 2), seats INTEGER, note VARCHAR(50))",
    "INSERT INTO plans (name, price, seats, note) VALUES ('plan1', 10.5, 1, NULL), ('plan2', 21, 2, 'two'), \
     ('plan3', 31.5, 3, NULL), ('plan4', 42, 4, NULL), ('plan5', 52.5, 5, NULL), ('plan6', 63, 6, NULL), \
     ('plan7', 73.5, 7, NULL), ('plan8', 84, 8, NULL), ('plan9', 94.5, 9, NULL), ('plan10', 105, 10, NULL)",
];

impl TestDb {
    fn new(kind: Kind) -> Self {
        let name = format!("sqlcap_{}", uuid::Uuid::new_v4().simple());
        let db = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("pricing.db").display());
                admin_sql(&format!("{url}?mode=rwc"), &[]);
                Self { kind, url, admin: None, _dir: Some(dir) }
            }
            Kind::Postgres => {
                let admin = std::env::var("SANDFLOW_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                admin_sql(&admin, &[&format!("CREATE DATABASE {name}")]);
                Self { kind, url: with_database(&admin, &name), admin: Some((admin, name)), _dir: None }
            }
            Kind::MariaDb => {
                let admin = std::env::var("SANDFLOW_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
                admin_sql(&admin, &[&format!("CREATE DATABASE {name}")]);
                Self { kind, url: with_database(&admin, &name), admin: Some((admin, name)), _dir: None }
            }
        };
        admin_sql(&db.admin_url(), SEED);
        db
    }

    /// A read-write URL of the database (SQLite: the file itself).
    fn admin_url(&self) -> String {
        if self.kind == Kind::Sqlite { format!("{}?mode=rw", self.url) } else { self.url.clone() }
    }

    fn count(&self) -> i64 {
        let rows = admin_query(&self.admin_url(), "SELECT COUNT(*) FROM plans");
        rows[0]
    }

    fn table_exists(&self, table: &str) -> bool {
        let sql = match self.kind {
            Kind::Sqlite => format!("SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"),
            Kind::Postgres => format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{table}'"),
            Kind::MariaDb => format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{table}' AND table_schema = DATABASE()"
            ),
        };
        admin_query(&self.admin_url(), &sql)[0] > 0
    }

    fn config(&self, options: &str) -> SqlConfig {
        let spec = format!("pricing={}{options}", self.url);
        SqlConfig { databases: vec![spec.parse().expect("spec")], ..SqlConfig::default() }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.admin {
            let drop = if self.kind == Kind::Postgres {
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            } else {
                format!("DROP DATABASE IF EXISTS {name}")
            };
            admin_sql(admin, &[&drop]);
        }
    }
}

fn with_database(admin: &str, name: &str) -> String {
    let base = admin.split('?').next().unwrap_or(admin);
    format!("{}/{name}", base.rsplit_once('/').map_or(base, |(b, _)| b))
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

fn admin_sql(url: &str, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    block(async {
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("the test database is needed at {url}: {e}"));
        for statement in statements {
            conn.execute(*statement).await.expect(statement);
        }
        conn.close().await.ok();
    });
}

fn admin_query(url: &str, sql: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    block(async {
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("connects");
        let rows = conn.fetch_all(sql).await.expect(sql);
        conn.close().await.ok();
        rows.iter().map(|r| r.try_get::<i64, _>(0).expect("an integer")).collect()
    })
}

/// Generates one test per database for a scenario `fn(&TestDb)`.
macro_rules! on_every_database {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario(&super::TestDb::new(super::Kind::Sqlite));
            }
            #[test]
            fn postgres() {
                super::$scenario(&super::TestDb::new(super::Kind::Postgres));
            }
            #[test]
            fn mariadb() {
                super::$scenario(&super::TestDb::new(super::Kind::MariaDb));
            }
        }
    )*};
}

on_every_database!(
    reads_rows_as_json,
    writes_are_refused_by_the_database,
    session_tricks_do_not_outlive_their_call,
    one_statement_per_call,
    the_row_cap_holds,
    a_slow_statement_stops_at_the_deadline,
    read_write_databases_take_writes,
    a_huge_value_is_refused_before_the_host_reads_it,
    saas_pricing_queries_through_its_agent,
);

fn runtime(sql: SqlConfig, providers: &[String]) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let capabilities = CapabilityConfig {
        sql,
        llm: LlmConfig { providers: providers.iter().map(|p| p.parse().expect("provider")).collect() },
        ..CapabilityConfig::default()
    };
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

fn shared_flow(path: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(path);
    serde_json::from_slice(&std::fs::read(path).expect("shared flow")).expect("JSON")
}

fn load(runtime: &Runtime, flow: &Json) -> FlowComponent {
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

const SQL_NODE: &str = "SQLComponent-NMSUa";

/// SaaS Pricing's Chat Input, SQL Database and Chat Output, wired so the
/// chat message is the SQL statement and the table is the answer.
fn query_flow() -> Json {
    let mut flow = shared_flow("starter/saas-pricing.json");
    let nodes = flow["data"]["nodes"].as_array_mut().expect("nodes");
    nodes.retain(|n| ["ChatInput", "SQLComponent", "ChatOutput"].contains(&n["data"]["type"].as_str().unwrap_or("")));
    for node in nodes.iter_mut() {
        if node["data"]["type"] == "SQLComponent" {
            node["data"]["node"]["tool_mode"] = false.into();
            // Outside tool mode the field is required; tests tweak it per run.
            node["data"]["node"]["template"]["database_url"]["value"] = "pricing".into();
            node["data"]["node"]["outputs"] = json!([{
                "name": "run_sql_query", "display_name": "Result Table", "method": "run_sql_query",
                "types": ["DataFrame"], "selected": "DataFrame", "cache": true, "allows_loop": false,
                "group_outputs": false, "tool_mode": true, "value": "__UNDEFINED__"
            }]);
        }
    }
    flow["data"]["edges"] = json!([
        edge("ChatInput", "ChatInput-xlH2P", "message", &["Message"], SQL_NODE, "query", &["Message"], "str"),
        edge(
            "SQLComponent",
            SQL_NODE,
            "run_sql_query",
            &["DataFrame"],
            "ChatOutput-9LXqX",
            "input_value",
            &["Data", "JSON", "DataFrame", "Table", "Message"],
            "other"
        ),
    ]);
    flow
}

#[expect(clippy::too_many_arguments, reason = "an edge has this many parts")]
fn edge(
    source_type: &str,
    source: &str,
    output: &str,
    output_types: &[&str],
    target: &str,
    field: &str,
    input_types: &[&str],
    field_type: &str,
) -> Json {
    let source_handle = json!({"dataType": source_type, "id": source, "name": output, "output_types": output_types});
    let target_handle = json!({"fieldName": field, "id": target, "inputTypes": input_types, "type": field_type});
    let encode = |v: &Json| v.to_string().replace('"', "œ");
    json!({
        "id": format!("reactflow__edge-{source}-{target}-{field}"),
        "source": source,
        "target": target,
        "sourceHandle": encode(&source_handle),
        "targetHandle": encode(&target_handle),
        "data": {"sourceHandle": source_handle, "targetHandle": target_handle},
    })
}

/// Runs `statement` through the SQL node on database field `database`.
fn query_on(
    runtime: &Runtime,
    flow: &FlowComponent,
    database: &str,
    statement: &str,
    tenant: &str,
    limits: Limits,
) -> Result<RunOutcome, RunError> {
    let mut request =
        RunRequest { input_value: Some(statement.into()), session_id: "s1".into(), ..RunRequest::default() };
    request.tweaks.insert(SQL_NODE.into(), json!({"database_url": database}));
    let context = RunContext { tenant: tenant.into(), agent: "pricing-agent".into(), ..RunContext::default() };
    runtime.sandbox_for(limits, context).run_flow(flow, &request)
}

fn query(runtime: &Runtime, flow: &FlowComponent, statement: &str) -> Result<RunOutcome, RunError> {
    query_on(runtime, flow, "pricing", statement, "acme", Limits::default())
}

fn answer(outcome: &RunOutcome) -> String {
    match &outcome.outputs[0].value {
        Value::Message(m) => m.text.clone(),
        other => panic!("expected a Message, got {other:?}"),
    }
}

fn failure(result: Result<RunOutcome, RunError>) -> String {
    match result {
        Ok(outcome) => panic!("expected a refusal, got {:?}", answer(&outcome)),
        Err(error) => error.to_string(),
    }
}

fn reads_rows_as_json(db: &TestDb) {
    let runtime = runtime(db.config(""), &[]);
    let flow = load(&runtime, &query_flow());
    let outcome = query(&runtime, &flow, "SELECT name, price, seats, note FROM plans WHERE seats <= 2 ORDER BY seats")
        .expect("runs");
    let text = answer(&outcome);
    assert!(text.contains("plan1") && text.contains("plan2") && !text.contains("plan3"), "{text}");
    assert!(text.contains("10.5") && text.contains("two"), "{text}");
}

fn writes_are_refused_by_the_database(db: &TestDb) {
    let runtime = runtime(db.config(""), &[]);
    let flow = load(&runtime, &query_flow());
    for statement in [
        "INSERT INTO plans (name, price, seats) VALUES ('free', 0, 1)",
        "UPDATE plans SET price = 0",
        "DELETE FROM plans",
        "CREATE TABLE evil (a INTEGER)",
        "DROP TABLE plans",
    ] {
        let said = failure(query(&runtime, &flow, statement));
        assert!(said.contains("read-only"), "{statement}: {said}");
    }
    assert_eq!(db.count(), 10, "no row changed");
    assert!(!db.table_exists("evil"), "no table created");
    assert!(db.table_exists("plans"), "no table dropped");
}

fn session_tricks_do_not_outlive_their_call(db: &TestDb) {
    let runtime = runtime(db.config(""), &[]);
    let flow = load(&runtime, &query_flow());
    let tricks: &[&str] = match db.kind {
        Kind::Sqlite => &["PRAGMA query_only = OFF", "PRAGMA writable_schema = ON"],
        Kind::Postgres => &[
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET default_transaction_read_only = off",
            "SET TRANSACTION READ WRITE",
        ],
        Kind::MariaDb => &["SET SESSION TRANSACTION READ WRITE", "SET SESSION transaction_read_only = 0"],
    };
    for trick in tricks {
        // The trick may run or be refused; either way it ends with its call.
        let _ = query(&runtime, &flow, trick);
        let said = failure(query(&runtime, &flow, "INSERT INTO plans (name, price, seats) VALUES ('free', 0, 1)"));
        assert!(said.contains("read-only"), "after `{trick}`: {said}");
    }
    assert_eq!(db.count(), 10);
}

fn one_statement_per_call(db: &TestDb) {
    // Even where writes are allowed, a second statement never runs.
    let runtime = runtime(db.config(",read-write"), &[]);
    let flow = load(&runtime, &query_flow());
    for statement in [
        "SELECT 1; DROP TABLE plans",
        "SELECT name FROM plans;DELETE FROM plans;",
        "SELECT 1 AS a; /* hidden */ DROP TABLE plans",
    ] {
        let said = failure(query(&runtime, &flow, statement));
        assert!(
            said.contains("more than one statement") || said.contains("multiple") || said.contains("syntax"),
            "{statement}: {said}"
        );
    }
    assert!(db.table_exists("plans"));
    assert_eq!(db.count(), 10);
    // A trailing `;` is still one statement.
    query(&runtime, &flow, "SELECT name FROM plans WHERE seats = 1;").expect("one statement runs");
}

fn the_row_cap_holds(db: &TestDb) {
    let mut config = db.config("");
    config.max_rows = 5;
    let runtime = runtime(config, &[]);
    let flow = load(&runtime, &query_flow());
    let said = failure(query(&runtime, &flow, "SELECT * FROM plans"));
    assert!(said.contains("more than 5 rows") && said.contains("LIMIT"), "{said}");
    let text = answer(&query(&runtime, &flow, "SELECT name FROM plans ORDER BY seats LIMIT 5").expect("five rows"));
    assert!(text.contains("plan5") && !text.contains("plan6"), "{text}");
}

fn a_slow_statement_stops_at_the_deadline(db: &TestDb) {
    let runtime = runtime(db.config(""), &[]);
    let flow = load(&runtime, &query_flow());
    let limits = Limits { deadline: Duration::from_millis(1_500), ..Limits::default() };
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
    let statements: &[&str] = match db.kind {
        Kind::Sqlite => &[endless],
        Kind::Postgres => &["SELECT pg_sleep(30)", endless],
        Kind::MariaDb => &["SELECT SLEEP(30)", "SELECT BENCHMARK(5000000000, SHA2('x', 512))"],
    };
    for statement in statements {
        let started = Instant::now();
        let result = query_on(&runtime, &flow, "pricing", statement, "acme", limits);
        let elapsed = started.elapsed();
        assert!(result.is_err(), "{statement} must not complete");
        assert!(elapsed < Duration::from_secs(8), "{statement} ran for {elapsed:?}");
    }
    // The server stopped them too (not just the host waiting).
    let running = |sql: &str| admin_query(&db.admin_url(), sql)[0];
    let deadline = Instant::now() + Duration::from_secs(5);
    let check = match db.kind {
        Kind::Sqlite => return,
        Kind::Postgres => {
            "SELECT COUNT(*)::BIGINT FROM pg_stat_activity WHERE state = 'active' AND (query LIKE 'SELECT pg_sleep%' \
             OR query LIKE 'WITH RECURSIVE c%')"
        }
        Kind::MariaDb => {
            "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(30)%' \
             OR info LIKE 'SELECT BENCHMARK%'"
        }
    };
    while running(check) > 0 {
        assert!(Instant::now() < deadline, "the slow statements still run on the server");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A value over the call's byte bound is refused from its message's
/// header: the host never buffers it (before, the driver read all 200 MB
/// and only then was the row refused, with another message).
fn a_huge_value_is_refused_before_the_host_reads_it(db: &TestDb) {
    let mut config = db.config("");
    config.max_bytes = 1 << 20;
    let runtime = runtime(config, &[]);
    let flow = load(&runtime, &query_flow());
    let huge: &[&str] = match db.kind {
        // SQLite refuses such values itself (`sqlite_statements_cannot_take_the_hosts_memory`).
        Kind::Sqlite => &[],
        Kind::Postgres => {
            &["SELECT repeat('x', 200000000) AS huge", "DO $$ BEGIN RAISE NOTICE '%', repeat('x', 50000000); END $$"]
        }
        // MariaDB's own packet bound (16 MiB) turns longer values into NULL.
        Kind::MariaDb => &["SELECT REPEAT('x', 10000000) AS huge"],
    };
    for statement in huge {
        let said = failure(query(&runtime, &flow, statement));
        assert!(said.contains("bytes or more") && said.contains("substr()"), "{statement}: {said}");
    }
    let fits = match db.kind {
        Kind::Sqlite => "SELECT length(y) AS n, y AS text FROM (SELECT replace(hex(zeroblob(450000)), '0', 'y') AS y)",
        Kind::Postgres => "SELECT length(repeat('x', 900000)) AS n, repeat('y', 900000) AS text",
        Kind::MariaDb => "SELECT LENGTH(REPEAT('x', 900000)) AS n, REPEAT('y', 900000) AS text",
    };
    let text = answer(&query(&runtime, &flow, fits).expect("a value under the bound"));
    assert!(text.contains("900000") && text.contains(&"y".repeat(1000)), "{}", &text[..100.min(text.len())]);
}

fn read_write_databases_take_writes(db: &TestDb) {
    let runtime = runtime(db.config(",read-write"), &[]);
    let flow = load(&runtime, &query_flow());
    query(&runtime, &flow, "INSERT INTO plans (name, price, seats) VALUES ('free', 0, 1)").expect("writes");
    assert_eq!(db.count(), 11);
}

/// SaaS Pricing as shipped, its agent's SQL tool pointed at the database:
/// the model (the test server) calls `run_sql_query` and reads the rows;
/// a write it asks for comes back to it as the database's refusal.
fn saas_pricing_queries_through_its_agent(db: &TestDb) {
    let model = Model::start();
    let provider = format!("OpenAI=openai,{}/v1,gpt-test", model.server.url());
    let runtime = runtime(db.config(""), &[provider]);
    let flow = load(&runtime, &shared_flow("starter/saas-pricing.json"));
    let ask = |input: &str| {
        let mut request =
            RunRequest { input_value: Some(input.into()), session_id: "s1".into(), ..RunRequest::default() };
        request.tweaks.insert(SQL_NODE.into(), json!({"database_url": "pricing"}));
        let context = RunContext { tenant: "acme".into(), agent: "pricing".into(), ..RunContext::default() };
        answer(&runtime.sandbox_for(Limits::default(), context).run_flow(&flow, &request).expect("runs"))
    };
    let said = ask(
        r#"use run_sql_query {"query": "SELECT name, price, seats, note FROM plans WHERE seats <= 2 ORDER BY seats"}"#,
    );
    let rows = said.strip_prefix("run_sql_query returned: ").unwrap_or_else(|| panic!("a tool result: {said}"));
    let rows: Json = serde_json::from_str(rows).expect("rows as JSON");
    // Numbers stay numbers (SQLite keeps 21 an integer, NUMERIC columns give 21.0).
    let price = |row: &Json| row["price"].as_f64();
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(
        (rows[0]["name"].clone(), price(&rows[0]), rows[0]["seats"].clone()),
        (json!("plan1"), Some(10.5), json!(1))
    );
    assert_eq!(
        (rows[1]["name"].clone(), price(&rows[1]), rows[1]["note"].clone()),
        (json!("plan2"), Some(21.0), json!("two"))
    );
    assert_eq!(rows[0]["note"], Json::Null);
    let columns: Vec<&String> = rows[0].as_object().expect("a row").keys().collect();
    assert_eq!(columns, ["name", "price", "seats", "note"], "columns in the statement's order");
    let offered =
        model.server.requests().iter().find_map(|r| r.body["tools"].as_array().cloned()).expect("tools offered");
    let sql_tool = offered.iter().find(|t| t["function"]["name"] == "run_sql_query").expect("the SQL tool");
    assert!(sql_tool["function"]["parameters"]["properties"]["query"].is_object());

    let said = ask(r#"use run_sql_query {"query": "DROP TABLE plans"}"#);
    assert!(said.contains("read-only"), "the model reads the refusal: {said}");
    assert!(db.table_exists("plans"));
}

/// A model server on its own runtime.
struct Model {
    server: ModelServer,
    _io: tokio::runtime::Runtime,
}

impl Model {
    fn start() -> Self {
        let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let server = io.block_on(ModelServer::start(Options::default())).expect("model server starts");
        Self { server, _io: io }
    }
}

#[test]
fn a_flow_cannot_name_a_database_the_operator_did_not_allow() {
    let db = TestDb::new(Kind::Sqlite);
    let runtime = runtime(db.config(""), &[]);
    let flow = load(&runtime, &query_flow());
    let run = |database: &str| failure(query_on(&runtime, &flow, database, "SELECT 1", "acme", Limits::default()));
    let said = run("postgres://postgres@127.0.0.1:5432/test");
    assert!(said.contains("denied") && said.contains("allow the database by name"), "{said}");
    let said = run("sqlite:///etc/passwd");
    assert!(said.contains("denied") && said.contains("by name"), "refused before any connection: {said}");
    let said = run("billing");
    assert!(said.contains("denied") && said.contains("no database named `billing`"), "{said}");
    let said = run("");
    assert!(said.contains("pricing"), "an empty field names the allowed databases: {said}");
    // The operator's URL itself names the database too.
    query_on(&runtime, &flow, &db.url, "SELECT 1", "acme", Limits::default()).expect("the listed URL");
}

#[test]
fn sqlite_statements_cannot_open_host_files() {
    let db = TestDb::new(Kind::Sqlite);
    let dir = tempfile::tempdir().expect("temp dir");
    for options in ["", ",read-write"] {
        let runtime = runtime(db.config(options), &[]);
        let flow = load(&runtime, &query_flow());
        let copy = dir.path().join("copy.db");
        let attached = dir.path().join("attached.db");
        for statement in
            [format!("VACUUM INTO '{}'", copy.display()), format!("ATTACH DATABASE '{}' AS other", attached.display())]
        {
            let said = failure(query(&runtime, &flow, &statement));
            assert!(said.contains("open other files"), "{statement}: {said}");
        }
        assert!(!copy.exists() && !attached.exists(), "no file created on the host");
    }
}

/// SQLite builds its values in the host's process: a value longer than
/// the call's byte bound is refused as SQLite would build it, whether it
/// is in the result or only on the way to it, and what a statement builds
/// in all stops at SQLite's heap cap, so no statement drives the host out
/// of memory.
#[test]
fn sqlite_statements_cannot_take_the_hosts_memory() {
    let db = TestDb::new(Kind::Sqlite);
    for options in ["", ",read-write"] {
        let runtime = runtime(db.config(options), &[]);
        let flow = load(&runtime, &query_flow());
        for statement in [
            "SELECT randomblob(999999999)",
            "SELECT length(randomblob(999999999)) AS n",
            "SELECT length(hex(zeroblob(5000000))) AS n",
            "WITH RECURSIVE c(x) AS (SELECT 'ab' UNION ALL SELECT x || x FROM c) SELECT length(x) FROM c",
        ] {
            let said = failure(query(&runtime, &flow, statement));
            assert!(said.contains("over 8388608 bytes") && said.contains("smaller values"), "{statement}: {said}");
        }
        // Each value within the bound, together far past the heap cap.
        let thousand = "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 1000) SELECT n FROM c)";
        let wide: Vec<String> = (0..200).map(|i| format!("hex(zeroblob(4000000)) AS c{i}")).collect();
        for statement in [
            format!("SELECT length(json_group_array(hex(zeroblob(4000000)))) AS n FROM {thousand}"),
            format!("SELECT {}", wide.join(", ")),
        ] {
            let said = failure(query(&runtime, &flow, &statement));
            assert!(said.contains("memory it may use on this host"), "{}: {said}", &statement[..60]);
        }
        let text =
            answer(&query(&runtime, &flow, "SELECT length(randomblob(1000000)) AS n").expect("within the bound"));
        assert!(text.contains("1000000"), "{text}");
    }
}

/// PRAGMAs reach past the call: some set the whole process's SQLite
/// (its heap limits, its temporary directory), others the database file,
/// and some tell where the host keeps it (`database_list`). Only those
/// that describe the schema run, as statements or as tables.
#[test]
fn sqlite_statements_use_only_schema_pragmas() {
    let db = TestDb::new(Kind::Sqlite);
    let dir = tempfile::tempdir().expect("temp dir");
    for options in ["", ",read-write"] {
        let runtime = runtime(db.config(options), &[]);
        let flow = load(&runtime, &query_flow());
        for statement in [
            "PRAGMA hard_heap_limit = 1".to_owned(),
            "PRAGMA soft_heap_limit = 1".to_owned(),
            "SELECT * FROM pragma_database_list".to_owned(),
            format!("PRAGMA temp_store_directory = '{}'", dir.path().display()),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "PRAGMA writable_schema = ON".to_owned(),
        ] {
            let said = failure(query(&runtime, &flow, &statement));
            assert!(said.contains("do not allow here") && said.contains("table_info"), "{statement}: {said}");
        }
        for statement in ["PRAGMA table_info(plans)", "SELECT name, type FROM pragma_table_info('plans')"] {
            let text = answer(&query(&runtime, &flow, statement).expect("a schema PRAGMA"));
            assert!(text.contains("price") && text.contains("NUMERIC"), "{statement}: {text}");
        }
        // The host's cap was not lowered: SQLite still works here.
        query(&runtime, &flow, "SELECT name FROM plans ORDER BY seats LIMIT 3").expect("SQLite still has its heap");
    }
}

/// On a read-write SQLite database a flow writes rows and tables, but
/// leaves no code behind: no trigger or view (they would run in the
/// operator's own applications) and no virtual table (whose index
/// structures a flow could then forge).
#[test]
fn sqlite_writes_leave_no_code_behind() {
    let db = TestDb::new(Kind::Sqlite);
    let runtime = runtime(db.config(",read-write"), &[]);
    let flow = load(&runtime, &query_flow());
    for statement in [
        "CREATE TRIGGER t AFTER INSERT ON plans BEGIN DELETE FROM plans; END",
        "CREATE TEMP TRIGGER t AFTER INSERT ON plans BEGIN DELETE FROM plans; END",
        "CREATE VIEW cheap AS SELECT * FROM plans WHERE price < 50",
        "CREATE VIRTUAL TABLE docs USING fts5(body)",
    ] {
        let said = failure(query(&runtime, &flow, statement));
        // A trigger's body holds `;`s, which the one-statement check refuses
        // first; the authorizer would refuse it next.
        let refused = said.contains("do not allow here") && said.contains("triggers, views");
        assert!(refused || said.contains("more than one statement"), "{statement}: {said}");
    }
    for object in ["t", "cheap", "docs"] {
        assert!(!db.table_exists(object), "`{object}` was not created");
    }
    query(&runtime, &flow, "CREATE TABLE notes (body TEXT)").expect("plain tables may be created");
    let said = failure(query(&runtime, &flow, "SELECT name FROM plans WHERE seats = ?"));
    assert!(said.contains("write the values into the statement"), "{said}");
}

#[test]
fn a_database_of_one_tenant_is_not_another_tenants() {
    let db = TestDb::new(Kind::Sqlite);
    let runtime = runtime(db.config(",tenant=acme"), &[]);
    let flow = load(&runtime, &query_flow());
    query_on(&runtime, &flow, "pricing", "SELECT 1", "acme", Limits::default()).expect("its tenant");
    let said = failure(query_on(&runtime, &flow, "pricing", "SELECT 1", "globex", Limits::default()));
    assert!(said.contains("no database named `pricing`"), "{said}");
}

#[test]
fn a_host_without_databases_says_so() {
    let runtime = runtime(SqlConfig::default(), &[]);
    let flow = load(&runtime, &query_flow());
    let said = failure(query(&runtime, &flow, "SELECT 1"));
    assert!(said.contains("not configured") && said.contains("--sql-database"), "{said}");
}
