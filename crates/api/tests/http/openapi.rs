//! The OpenAPI document: valid shape, every route of the server in it, every operation in it
//! served; `signers` typed as the server checks them; links from created resources that lead to
//! them; `/docs` served from the binary.

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
    ("post", "/trustedx-resources/esignsp/v2/webhook_endpoints"),
    ("get", "/trustedx-resources/esignsp/v2/webhook_endpoints"),
    ("get", "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}"),
    ("patch", "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}"),
    ("delete", "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}"),
    ("post", "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}/secret/rotate"),
    ("get", "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}/deliveries"),
    ("post", "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}/deliveries/{delivery_id}/replay"),
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
                .replace("{delivery_id}", "1")
        );
        let r = app.client.request(method.to_uppercase().parse().expect("method"), url).send().await.expect("req");
        assert_ne!(r.status(), 405, "{method} {path}");
    }
    let metrics = app.client.get(format!("{root}/metrics")).send().await.expect("req").text().await.expect("text");
    assert!(!metrics.contains(r#"route="unmatched""#), "a documented operation is not routed:\n{metrics}");
}

async fn openapi_document(app: &TestApp) -> Value {
    let url = format!("http://127.0.0.1:{}/openapi.json", app.port);
    app.client.get(url).send().await.expect("req").json().await.expect("json")
}

/// The documentation page and every file it refers to come from the service itself (no CDN,
/// no web font, no validator badge); the page in a real browser is `scripts/docs-browser.sh`.
#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_by_the_service() {
    let app = spawn_app().await;
    let root = format!("http://127.0.0.1:{}", app.port);
    for path in ["/docs", "/docs/"] {
        let page = app.client.get(format!("{root}{path}")).send().await.expect("req");
        assert_eq!(page.status(), 200, "{path}");
        assert!(page.headers()["content-type"].to_str().expect("type").starts_with("text/html"), "{path}");
        let html = page.text().await.expect("html");
        assert!(html.contains(r#"<base href="/docs/">"#), "{path}: relative links resolve under /docs/");
        let references: Vec<&str> = html
            .split(['"', '\''])
            .skip(1)
            .step_by(2)
            .filter(|v| v.ends_with(".js") || v.ends_with(".css") || v.ends_with(".png"))
            .collect();
        assert!(references.iter().any(|r| r.ends_with("swagger-ui-bundle.js")), "{path}: Swagger UI: {html}");
        for reference in references {
            assert!(!reference.contains("//"), "{path}: {reference} is on another host");
            let url = format!("{root}/docs/{}", reference.trim_start_matches("./"));
            let asset = app.client.get(&url).send().await.expect("req");
            assert_eq!(asset.status(), 200, "{url}");
            assert!(!asset.bytes().await.expect("bytes").is_empty(), "{url}");
        }
    }
    let init = app.client.get(format!("{root}/docs/swagger-initializer.js")).send().await.expect("req");
    let init = init.text().await.expect("js");
    assert!(init.contains(r#""url": "/openapi.json""#), "the page renders this service's document: {init}");
    assert!(init.contains(r#""validatorUrl": "none""#), "no badge from the online validator: {init}");
    let missing = app.client.get(format!("{root}/docs/no-such-file.js")).send().await.expect("req");
    assert_problem(missing, 404, "not-found", "an unknown docs file").await;
}

/// `signers` (O8's part, and the member of O8/O9 representations) is an array of signature
/// definitions with an example; the example is accepted and returned as sent, and a definition
/// whose documented members have another type is refused, as the document says.
#[tokio::test]
async fn signers_have_the_signature_definition_schema_that_o8_enforces() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let definition = &schemas["SignatureDefinition"];
    assert_eq!(definition["type"], "object");
    assert_eq!(definition["properties"]["signature_policy_id"]["type"], "string");
    assert_eq!(definition["properties"]["parameters"]["$ref"], "#/components/schemas/SignatureParameters");
    let field = &schemas["SignatureField"]["properties"];
    assert_eq!(field["name"]["type"], "string");
    assert_eq!(field["page"]["$ref"], "#/components/schemas/PageNumber");
    let items = serde_json::json!({"$ref": "#/components/schemas/SignatureDefinition"});
    assert_eq!(schemas["DocumentForm"]["properties"]["signers"]["items"], items, "the O8 part");
    assert_eq!(schemas["Document"]["properties"]["signers"]["items"], items, "the representation's member");
    let o8 = &doc["paths"]["/trustedx-resources/esignsp/v2/documents"]["post"];
    let form = &o8["requestBody"]["content"]["multipart/form-data"];
    assert_eq!(form["encoding"]["signers"]["contentType"], "application/json", "signers is a JSON part");
    let example = schemas["DocumentForm"]["properties"]["signers"]["example"].clone();
    assert!(example[0]["parameters"]["signature_field"]["name"].is_string(), "an example: {example}");

    let upload = |signers: String| {
        let form = reqwest::multipart::Form::new()
            .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("c.pdf"))
            .part("signers", reqwest::multipart::Part::text(signers));
        app.client.post(app.url("/documents")).bearer_auth(token("relying-app")).multipart(form).send()
    };
    let created = upload(example.to_string()).await.expect("req");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["signers"], example, "returned as sent");
    let read: Value = app
        .get("relying-app", &format!("/documents/{}", created["id"].as_str().expect("id")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["signers"], example, "O9 returns them as stored");

    for (signers, member) in [
        (r#"[{"signature_policy_id": 5}]"#, "signers[].signature_policy_id"),
        (
            r#"[{"parameters": {"type": "pades", "signature_field": {"page": 1.5}}}]"#,
            "signers[].parameters.signature_field.page",
        ),
        (r#"[{"parameters": "pades"}]"#, "signers[].parameters"),
        (r#"["Sign1"]"#, "signers[]"),
    ] {
        let problem =
            assert_problem(upload(signers.to_owned()).await.expect("req"), 400, "invalid-body", signers).await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(member)), "{signers}: {problem}");
    }
}

/// O1's 201 response links to every operation on the created process and its documents, and
/// following each link on a real 201 body reaches the resource (never 404 or 410).
#[tokio::test]
async fn links_from_a_created_process_reach_every_operation_on_it() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    let mut operations = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            operations.insert(
                operation["operationId"].as_str().unwrap_or_default().to_owned(),
                (method.clone(), path.clone()),
            );
        }
    }
    let o1 = &doc["paths"]["/trustedx-resources/esignsp/v2/signer_processes"]["post"];
    let links = o1["responses"]["201"]["links"].as_object().expect("O1's 201 response has links");
    let on_process: Vec<&String> = operations
        .iter()
        .filter(|(_, (_, path))| path.contains("/signer_processes/{id}") || path.ends_with("/ui"))
        .map(|(id, _)| id)
        .collect();
    for id in &on_process {
        assert!(links.values().any(|l| l["operationId"] == id.as_str()), "no link to {id}");
    }

    let created = app.create_process("relying-app", 1).await;
    // Writes first (O4 reads a result only once one is set), deletions last.
    let mut targets: Vec<(&String, &Value)> = links.iter().collect();
    targets.sort_by_key(|(_, l)| {
        let (method, _) = &operations[l["operationId"].as_str().unwrap_or_default()];
        (method != "put", method == "delete")
    });
    for (name, link) in targets {
        let (method, path) = &operations[link["operationId"].as_str().expect("operationId")];
        let mut url = app.url(path.trim_start_matches("/trustedx-resources/esignsp/v2"));
        for (parameter, expression) in link["parameters"].as_object().expect("parameters") {
            let pointer = expression.as_str().and_then(|e| e.strip_prefix("$response.body#")).expect("a body pointer");
            let value = created.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{name}: {pointer}"));
            url = if url.contains(&format!("{{{parameter}}}")) {
                url.replace(&format!("{{{parameter}}}"), value)
            } else {
                format!("{url}?{parameter}={value}")
            };
        }
        let request = app
            .client
            .request(method.to_uppercase().parse().expect("method"), &url)
            .bearer_auth(token("relying-app"))
            .header("Content-Type", "application/json");
        let request = if method == "put" { request.body(r#"{"status":"finished"}"#) } else { request };
        let status = request.send().await.expect("req").status().as_u16();
        assert!(!matches!(status, 404 | 410), "{name}: {method} {url} answered {status}");
    }
}

/// Members the document leaves open (other members of a signature definition, `signer`,
/// `views`, `timestamp`) come back as sent on both stores, numbers at the ends of the f64 range
/// included (PostgreSQL jsonb prints -1.7976931348623157e308 as a 309-digit integer, which
/// failed to parse back, and every read of the resource dropped the connection).
#[tokio::test]
async fn open_members_with_extreme_numbers_come_back_as_sent() {
    let app = spawn_app().await;
    let extremes = serde_json::json!({"max": -1.7976931348623157e308, "tiny": 5e-324, "big": 1.2345678901234568e29});
    let signers = serde_json::json!([{"signature_policy_id": "urn:x", "extra": extremes}]);
    let form = reqwest::multipart::Form::new()
        .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("c.pdf"))
        .part("signers", reqwest::multipart::Part::text(signers.to_string()));
    let created = app.client.post(app.url("/documents")).bearer_auth(token("relying-app")).multipart(form).send();
    let created: Value = created.await.expect("req").json().await.expect("json");
    let read = app.get("relying-app", &format!("/documents/{}", created["id"].as_str().expect("id"))).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<Value>().await.expect("json")["signers"], signers, "O9");

    let process = serde_json::json!({
        "process_type": "urn:safelayer:eidas:processes:document:sign",
        "signer": {"x": extremes}, "views": {"x": extremes}, "timestamp": {"x": extremes}
    });
    let created = app.create_process_with_json("relying-app", process).await;
    let read = app.get("relying-app", &format!("/signer_processes/{}", created["id"].as_str().expect("id"))).await;
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.expect("json");
    for member in ["signer", "views", "timestamp"] {
        assert_eq!(read[member]["x"], extremes, "O2 {member}");
    }
}
