//! Operator routes (`--http-route ORIGIN=BASE_URL`) against
//! `tests/web-fixture`, straight through the `http` capability (the
//! hostile guest's `HttpProbe`, past any node's own checks): a routed
//! origin reaches the base URL with its path and query; a route opens its
//! origin only, not its destination (asked for directly, it meets the
//! allow-list) nor another origin, and the guest is not told where a
//! route leads; redirects from a routed service are
//! routed and checked again, credentials following only to the same real
//! origin; a guest cannot name a secret for its headers.

use sandflow_runtime_host::{CapabilityConfig, Field, HttpConfig, Invocation, Limits, Runtime, RuntimeConfig, Value};
use sandflow_web_fixture::{DOCS_FACT, WebFixture};
use serde_json::Value as Json;
use std::path::Path;

fn runtime(http: HttpConfig) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let capabilities = CapabilityConfig { http: Some(http), ..CapabilityConfig::default() };
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

/// Routes `http://svc.example` (a name that resolves nowhere) and
/// `https://api.svc.example` (to the fixture's `/arxiv`), allowing `allow`.
fn routed(web: &WebFixture, allow: &[String]) -> HttpConfig {
    HttpConfig {
        allow: allow.iter().map(|a| a.parse().expect("pattern")).collect(),
        routes: vec![
            format!("http://svc.example={}", web.url()).parse().expect("route"),
            format!("https://api.svc.example={}/arxiv", web.url()).parse().expect("route"),
        ],
        ..HttpConfig::default()
    }
}

/// What the hostile guest's `HttpProbe` got for `url` with `headers`.
fn probe(runtime: &Runtime, url: &str, headers: &[&str]) -> String {
    let bytes = std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built");
    let node = runtime.load_node(&bytes).expect("loads");
    let mut fields = vec![Field { name: "url".into(), value: Value::Text(url.into()) }];
    fields.extend(headers.iter().map(|h| Field { name: "header".into(), value: Value::Text((*h).into()) }));
    let invocation = Invocation {
        component: "HttpProbe".into(),
        node_id: "probe".into(),
        display_name: "probe".into(),
        session_id: "s".into(),
        fields,
        wanted: vec!["out".into()],
    };
    let mut outputs = runtime.sandbox(Limits::default()).run_node(&node, &invocation).expect("no trap").expect("ok");
    match outputs.remove(0).value {
        Value::Text(t) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

/// The JSON body of a probe's answer (the fixture's `/echo`).
fn echoed(said: &str) -> Json {
    let body = said.split_once(" body=").map(|(_, b)| b).unwrap_or_else(|| panic!("no body: {said}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {said}"))
}

#[test]
fn a_routed_origin_reaches_the_base_url_with_its_path_and_query() {
    let web = WebFixture::start();
    let runtime = runtime(routed(&web, &[web.host_port()]));
    let said = probe(&runtime, "http://svc.example/echo?a=1&b=two%20words", &[]);
    let echo = echoed(&said);
    assert_eq!((echo["path"].as_str(), echo["query"].as_str()), (Some("/echo"), Some("a=1&b=two%20words")));
    assert_eq!(echo["headers"]["host"], web.host_port(), "the request really went to the base URL");
    // A base URL's path goes in front; the Atom feed is at `/arxiv/api/query`.
    let said = probe(&runtime, "https://api.svc.example/api/query?search_query=all", &[]);
    assert!(said.starts_with("status=200") && said.contains("Sandboxed Agents at Scale"), "{said}");
    let uris: Vec<String> = web.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(uris, ["/echo?a=1&b=two%20words", "/arxiv/api/query?search_query=all"]);
}

#[test]
fn a_route_opens_its_origin_but_not_its_destination() {
    let web = WebFixture::start();
    // The route's destination is not on the allow-list: it is reached
    // through the route, the operator's own way there...
    let runtime = runtime(routed(&web, &["example.org".to_owned()]));
    let said = probe(&runtime, "http://svc.example/echo", &[]);
    assert_eq!(echoed(&said)["path"], "/echo", "{said}");
    // ...but a flow asking for it directly meets the allow-list, for the
    // routed path and any other.
    for direct in [format!("{}/echo", web.url()), format!("{}/docs", web.url())] {
        let said = probe(&runtime, &direct, &[]);
        assert!(said.contains("is not on this host's egress allow-list"), "{direct}: {said}");
    }
    assert_eq!(web.seen().len(), 1, "only the routed request arrived: {:?}", web.seen());
    // A redirect that names the base goes on through the route.
    let said = probe(&runtime, &format!("http://svc.example/away?to={}/echo", web.url()), &[]);
    assert_eq!(echoed(&said)["path"], "/echo", "{said}");
    // A path a server could read as leaving the base is not routed.
    for path in ["/..%2Fdocs", "/%2e%2e%2fdocs", "/..;/docs", "/..%5Cdocs"] {
        let said = probe(&runtime, &format!("https://api.svc.example{path}"), &[]);
        assert!(said.contains("this path could leave the route"), "{path}: {said}");
    }
    assert_eq!(web.seen().len(), 3, "nothing past the base arrived: {:?}", web.seen());

    // A destination given as a name that resolves to loopback is the
    // operator's too; asked for directly, it is refused.
    let port = web.addr().port();
    let named = HttpConfig {
        allow: vec!["example.org".parse().expect("pattern")],
        routes: vec![format!("http://svc.example=http://localhost:{port}").parse().expect("route")],
        ..HttpConfig::default()
    };
    let named = self::runtime(named);
    assert_eq!(echoed(&probe(&named, "http://svc.example/echo", &[]))["path"], "/echo");
    let said = probe(&named, &format!("http://localhost:{port}/echo"), &[]);
    assert!(said.contains("`localhost:") && said.contains("is not on this host's egress allow-list"), "{said}");

    // A destination that does not resolve is reported without naming it.
    let dead = HttpConfig {
        routes: vec!["http://svc.example=http://no-such-host.invalid/base".parse().expect("route")],
        ..HttpConfig::default()
    };
    let said = probe(&self::runtime(dead), "http://svc.example/echo", &[]);
    assert!(
        said.starts_with("refused: `svc.example` is routed by this host's operator to a destination that")
            && !said.contains("no-such-host"),
        "where to is not told: {said}"
    );

    // Only the exact origin is routed; the rest meets the allow-list.
    let runtime = self::runtime(routed(&web, &[web.host_port()]));
    for other in [
        "https://svc.example/echo",
        "http://svc.example:8080/echo",
        "http://www.svc.example/echo",
        "http://svc.example.evil.test/echo",
        "http://api.svc.example/api/query",
    ] {
        let said = probe(&runtime, other, &[]);
        assert!(
            said.starts_with("refused: denied: `") && said.contains("is not on this host's egress allow-list"),
            "{other}: {said}"
        );
    }
    // A route cannot be smuggled past the URL checks either.
    let said = probe(&runtime, "http://user:pw@svc.example/echo", &[]);
    assert!(said.contains("user information") && !said.contains("pw"), "{said}");
    assert_eq!(web.seen().len(), 4, "nothing but the routed requests above arrived: {:?}", web.seen());
}

#[test]
fn a_redirect_stays_under_the_routes_base_path() {
    let web = WebFixture::start();
    let config = HttpConfig {
        routes: vec![format!("http://svc.example={}/mirror", web.url()).parse().expect("route")],
        ..HttpConfig::default()
    };
    let runtime = runtime(config);
    // Naming the base: mapped back to the routed origin, and through the
    // route again.
    let said = probe(&runtime, &format!("http://svc.example/away?to={}/mirror/echo?x=1", web.url()), &[]);
    assert_eq!(echoed(&said)["query"], "x=1", "{said}");
    let last = web.seen().last().map(|s| s.uri.clone());
    assert_eq!(last.as_deref(), Some("/mirror/echo?x=1"), "the base's own path, through the route");
    // Elsewhere on the base's origin: refused, and the base not named.
    for elsewhere in ["/echo", "/mirrored/echo", "/"] {
        let said = probe(&runtime, &format!("http://svc.example/away?to={}{elsewhere}", web.url()), &[]);
        assert!(said.contains("redirected out of the path its operator routes it to"), "{elsewhere}: {said}");
        assert!(!said.contains("127.0.0.1") && !said.contains("mirror"), "the base is not told: {said}");
    }
    let paths: Vec<String> = web.seen().iter().map(|s| s.uri.clone()).collect();
    assert!(paths.iter().all(|p| p.starts_with("/mirror/")), "nothing outside the base arrived: {paths:?}");
    assert_eq!(paths.len(), 5, "{paths:?}");
}

#[test]
fn redirects_from_a_routed_service_are_routed_and_checked_again() {
    let web = WebFixture::start();
    let other = WebFixture::start();
    let runtime = runtime(routed(&web, &[web.host_port(), other.host_port(), "localhost".to_owned()]));
    let port = web.addr().port();
    // Relative redirects stay on the routed origin, through the route.
    let said = probe(&runtime, "http://svc.example/redirect/2", &[]);
    assert!(said.starts_with("status=200") && said.contains(DOCS_FACT), "{said}");
    // Redirects away are checked where they lead.
    for (to, says) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "redirect refused: `169.254.169.254` is not on this host's egress allow-list",
        ),
        (&format!("http://localhost:{port}/docs"), "redirect refused: `localhost` resolves to a loopback address"),
        ("http://blocked.invalid/", "redirect refused: `blocked.invalid` is not on this host's egress allow-list"),
    ] {
        let said = probe(&runtime, &format!("http://svc.example/away?to={to}"), &[]);
        assert!(said.contains(says), "{to}: {said}");
    }
    // Credentials follow to the same real origin, never to another.
    let same = format!("http://svc.example/away?to={}/echo", web.url());
    let echo = echoed(&probe(&runtime, &same, &["authorization: Bearer t0k"]));
    assert_eq!(echo["headers"]["authorization"], "Bearer t0k", "the route's own origin keeps them");
    let away = format!("http://svc.example/away?to={}/echo", other.url());
    let echo = echoed(&probe(&runtime, &away, &["authorization: Bearer t0k"]));
    assert_eq!(echo["path"], "/echo");
    assert!(echo["headers"].get("authorization").is_none(), "dropped across origins: {echo}");
}

#[test]
fn a_guest_cannot_name_a_secret_for_its_headers() {
    let web = WebFixture::start();
    let runtime = runtime(routed(&web, &[web.host_port()]));
    let said = probe(&runtime, "http://svc.example/echo", &["authorization: {{secret:api_key}}"]);
    assert!(said.starts_with("refused: invalid request: field `api_key` of this node holds no key"), "{said}");
    assert!(web.seen().is_empty());
}
