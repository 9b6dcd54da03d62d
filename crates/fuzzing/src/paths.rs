//! Ids in paths (SPEC §2): routed by actix's router, percent-decoded, then parsed as the path
//! extractors parse them; anything that cannot be one of ours answers 404, never 400 or 500.

use std::sync::OnceLock;

use actix_web::dev::{Path, ResourceDef, Url};
use actix_web::http::Uri;
use actix_web::test::TestRequest;
use esignsp_api::dto::API_BASE;
use esignsp_api::error::ApiError;
use esignsp_api::extract::{document_id, process_id};

use crate::assert_client_error;

/// The routes with ids, below [`API_BASE`].
const ROUTES: [&str; 7] = [
    "/signer_processes/{id}",
    "/signer_processes/{id}/result",
    "/signer_processes/{id}/events",
    "/signer_processes/{id}/documents",
    "/signer_processes/{id}/documents/{document_id}/result",
    "/documents/{id}",
    "/documents/{id}/content",
];

fn assert_minted_shape(id: &str) {
    assert_eq!(id.len(), 32, "{id:?}");
    assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'v')), "{id:?}");
}

/// A request path (what follows the method on the request line): for every route it matches,
/// each id the handlers accept has our shape and routes back to itself; every other id is a
/// 404 problem.
pub fn path_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(uri) = text.parse::<Uri>() else {
        return; // actix-http answers 400 before routing.
    };
    static RESOURCES: OnceLock<Vec<(&str, String, ResourceDef)>> = OnceLock::new();
    let resources = RESOURCES.get_or_init(|| {
        ROUTES
            .iter()
            .map(|route| {
                let pattern = format!("{API_BASE}{route}");
                let resource = ResourceDef::new(pattern.as_str());
                (*route, pattern, resource)
            })
            .collect()
    });
    for (route, pattern, resource) in resources {
        let mut path = Path::new(Url::new(uri.clone()));
        if !resource.capture_match_info(&mut path) {
            continue;
        }
        let mut request = TestRequest::default();
        for (name, value) in path.iter() {
            request = request.param(name.to_owned(), value.to_owned());
        }
        let request = request.to_http_request();
        let mut ids = Vec::new();
        let is_document_route = route.starts_with("/documents/");
        let first = if is_document_route {
            document_id(&request, "id").map(|d| d.as_str().to_owned())
        } else {
            process_id(&request).map(|p| p.as_str().to_owned())
        };
        ids.push(first);
        if route.contains("{document_id}") {
            ids.push(document_id(&request, "document_id").map(|d| d.as_str().to_owned()));
        }
        for id in &ids {
            match id {
                Ok(id) => assert_minted_shape(id),
                Err(e) => {
                    assert!(matches!(e, ApiError::NotFound), "a path id that is not ours is a 404: {e:?}");
                    assert_client_error(ApiError::NotFound, &[404], "path id");
                }
            }
        }
        if let [Ok(first), rest @ ..] = ids.as_slice() {
            let mut canonical = pattern.replace("{id}", first);
            if let Some(Ok(second)) = rest.first() {
                canonical = canonical.replace("{document_id}", second);
            }
            let uri = canonical.parse::<Uri>().expect("a path of our ids is a URI");
            let mut again = Path::new(Url::new(uri));
            assert!(resource.capture_match_info(&mut again), "{canonical} routes to {route}");
            assert_eq!(again.get("id"), Some(first.as_str()), "the id routes back to itself");
        }
    }
}
