//! The OpenAPI document: valid shape, every route of the server in it, every operation in it
//! served.

use serde_json::Value;

use crate::common::*;

/// Every (method, path) the server routes, as registered in `routes::configure`.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/trustedx-resources/esignsp/v2/signer_processes"),
    ("get", "/trustedx-resources/esignsp/v2/signer_processes/{id}"),
    ("delete", "/trustedx-resources/esignsp/v2/signer_processes/{id}"),
    ("get", "/trustedx-resources/esignsp/v2/signer_processes/{id}/result"),
    ("put", "/trustedx-resources/esignsp/v2/signer_processes/{id}/result"),
    ("get", "/trustedx-resources/esignsp/v2/signer_processes/{id}/documents"),
    ("put", "/trustedx-resources/esignsp/v2/signer_processes/{id}/documents/{document_id}/result"),
    ("get", "/trustedx-resources/esignsp/v2/signer_processes/{id}/events"),
    ("post", "/trustedx-resources/esignsp/v2/documents"),
    ("get", "/trustedx-resources/esignsp/v2/documents/{id}"),
    ("delete", "/trustedx-resources/esignsp/v2/documents/{id}"),
    ("get", "/trustedx-resources/esignsp/v2/documents/{id}/content"),
    ("get", "/trustedx-resources/esignsp/v2/ui"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_only_served_ones() {
    let app = spawn_app().await;
    let root = format!("http://127.0.0.1:{}", app.port);
    let doc: Value =
        app.client.get(format!("{root}/openapi.json")).send().await.expect("req").json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        let op = &paths.get(*path).unwrap_or_else(|| panic!("{path} missing"))[*method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has responses");
        let protected = path.starts_with("/trustedx-resources") && !path.ends_with("/ui");
        assert_eq!(op["security"].is_array(), protected, "{method} {path}: bearer security iff protected");
        if protected {
            for status in ["401", "403", "503"] {
                assert!(op["responses"][status].is_object(), "{method} {path} documents {status}");
            }
        }
    }
    let documented: usize = paths.values().map(|p| p.as_object().map_or(0, |o| o.len())).sum();
    assert_eq!(documented, ROUTES.len(), "no operation documented that the server lacks");

    // Every documented operation is routed by the server (none falls to the default 404).
    for (method, path) in ROUTES {
        let url = format!(
            "{root}{}",
            path.replace("{id}", "0123456789abcdefghijklmnopqrstuv")
                .replace("{document_id}", "0123456789abcdefghijklmnopqrstuv")
        );
        let r = app.client.request(method.to_uppercase().parse().expect("method"), url).send().await.expect("req");
        assert_ne!(r.status(), 405, "{method} {path}");
    }
    let metrics = app.client.get(format!("{root}/metrics")).send().await.expect("req").text().await.expect("text");
    assert!(!metrics.contains(r#"route="unmatched""#), "a documented operation is not routed:\n{metrics}");

    let docs = app.client.get(format!("{root}/docs")).send().await.expect("req");
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.expect("html").to_lowercase().contains("redoc"), "the docs page renders the document");
}
