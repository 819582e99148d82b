//! API descriptions (OpenAPI 3.0, OpenAPI 3.1, Swagger 2.0) and the spec
//! status of the endpoints that receive traffic.
//!
//! [`parse_spec`] reads a JSON or YAML document into an [`ApiSpec`]: the
//! operations it documents, each a host, a method and a path template with the
//! server's base path prefixed. A [`SpecCatalog`] keeps the loaded revisions of
//! every spec by name and returns, for an observed `(host, method, endpoint)`,
//! whether the endpoint is documented, a shadow (no spec documents it) or a
//! zombie (deprecated, or removed from the latest revision). Documented
//! operations without traffic are orphans. The caller finds them by comparing
//! [`SpecCatalog::documented_operations`] with the operations in the
//! [`SpecMatch`] of every endpoint.
//!
//! - `document`: JSON or YAML bytes to a JSON value, with the size limit.
//! - `parse`: the value to operations, per kind of document.
//! - `server`: OpenAPI 3 server URLs and Swagger 2.0 host and base path.
//! - `path`: path templates, their segments, matching and specificity.
//! - `matching`: the index that finds the operation for an endpoint.
//! - `catalog`: revisions per spec, load outcome and serialization.

mod catalog;
mod document;
mod error;
mod matching;
mod parse;
mod path;
mod server;

pub use catalog::{
    CATALOG_FORMAT_VERSION, CatalogError, LoadKind, LoadOutcome, SpecCatalog, SpecRevision,
    content_checksum,
};
pub use error::SpecError;
pub use matching::{DocumentedOperation, SpecMatch, SpecStatus, ZombieReason};
pub use parse::{ApiSpec, SpecLimits, SpecOperation, parse_spec, parse_spec_with_limits};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An OpenAPI 3.0 shop service in YAML: server variables, a relative
    /// server, a path-level server, anchors with merge keys, unquoted status
    /// codes and both kinds of deprecation.
    const ORDERS_V2_YAML: &str = r#"
openapi: 3.0.3
info:
  title: Orders API
  version: "2.4.0"
  contact:
    email: platform@shop.example.com
servers:
  - url: https://{environment}.shop.example.com:{port}/orders-api/v2
    description: Public endpoint
    variables:
      environment:
        default: api
        enum: [api, staging-api]
      port:
        default: "443"
  - url: /orders-api/v2
    description: Relative to the host serving this document
tags:
  - name: orders
x-error-responses: &error-responses
  "401":
    description: Missing or invalid credentials
  "429":
    description: Rate limit exceeded
x-health-item: &health-item
  get:
    operationId: getHealth
    security: []
    responses:
      200:
        description: OK
paths:
  /orders:
    get:
      operationId: listOrders
      tags: [orders]
      parameters:
        - name: status
          in: query
          schema:
            type: string
            enum: [open, shipped, cancelled]
      responses:
        200:
          description: A page of orders
        <<: *error-responses
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/NewOrder'
      responses:
        201:
          description: Created
  /orders/export:
    get:
      operationId: exportOrders
      x-deprecated: Use the reporting API instead
      responses:
        200:
          description: CSV export
  /orders/{orderId}:
    parameters:
      - name: orderId
        in: path
        required: true
        schema:
          type: string
    get:
      operationId: getOrder
      responses:
        200:
          description: The order
    delete:
      operationId: cancelOrder
      deprecated: true
      description: Use POST /orders/{orderId}/cancellation instead.
      responses:
        204:
          description: Cancelled
  /orders/{orderId}/cancellation:
    post:
      operationId: requestCancellation
      responses:
        202:
          description: Accepted
  /orders/{orderId}/items/{itemId}:
    get:
      operationId: getOrderItem
      responses:
        200:
          description: One line item
  /orders/{orderId}/invoice.{format}:
    get:
      operationId: getInvoice
      responses:
        200:
          description: The invoice as PDF or HTML
  /orders/{orderId}/events:
    servers:
      - url: https://events.shop.example.com
    get:
      operationId: streamOrderEvents
      responses:
        200:
          description: Server-sent events
  /healthz:
    <<: *health-item
components:
  schemas:
    NewOrder:
      type: object
      required: [items]
      properties:
        items:
          type: array
          items:
            type: string
"#;

    /// An OpenAPI 3.1 accounts service in JSON on `api.example.com/svc-a`,
    /// first revision.
    const ACCOUNTS_V1_JSON: &str = r##"{
  "openapi": "3.1.0",
  "info": {"title": "Accounts", "version": "1.0.0", "license": {"name": "Apache 2.0", "identifier": "Apache-2.0"}},
  "servers": [{"url": "https://api.example.com/svc-a", "description": "Production"}],
  "paths": {
    "/users": {
      "get": {"operationId": "listUsers", "responses": {"200": {"description": "Users"}}},
      "post": {"operationId": "createUser", "responses": {"201": {"description": "Created"}}}
    },
    "/users/me": {
      "get": {"operationId": "getCurrentUser", "responses": {"200": {"description": "The caller"}}}
    },
    "/users/{userId}": {
      "get": {"operationId": "getUser", "responses": {"200": {"description": "A user"}}},
      "patch": {"operationId": "updateUser", "responses": {"200": {"description": "Updated"}}},
      "delete": {"operationId": "deleteUser", "responses": {"204": {"description": "Deleted"}}}
    },
    "/users/{userId}/legacy-profile": {
      "get": {"operationId": "getLegacyProfile", "responses": {"200": {"description": "Old format"}}}
    },
    "/sessions/{sessionId}": {"$ref": "#/components/pathItems/Session"}
  },
  "webhooks": {
    "userCreated": {"post": {"requestBody": {"description": "The new user"}, "responses": {"200": {"description": "Received"}}}}
  },
  "components": {
    "pathItems": {
      "Session": {
        "get": {"operationId": "getSession", "responses": {"200": {"description": "A session"}}},
        "delete": {"operationId": "endSession", "responses": {"204": {"description": "Ended"}}}
      }
    }
  }
}"##;

    /// Second revision of the accounts service: `legacy-profile` is gone,
    /// `{userId}` is renamed `{id}` in one path, `DELETE /users/{id}` is
    /// deprecated and `GET /users/{id}/avatar.{format}` is new.
    const ACCOUNTS_V2_JSON: &str = r##"{
  "openapi": "3.1.0",
  "info": {"title": "Accounts", "version": "1.1.0"},
  "servers": [{"url": "https://api.example.com/svc-a", "description": "Production"}],
  "paths": {
    "/users": {
      "get": {"operationId": "listUsers", "responses": {"200": {"description": "Users"}}},
      "post": {"operationId": "createUser", "responses": {"201": {"description": "Created"}}}
    },
    "/users/me": {
      "get": {"operationId": "getCurrentUser", "responses": {"200": {"description": "The caller"}}}
    },
    "/users/{id}": {
      "get": {"operationId": "getUser", "responses": {"200": {"description": "A user"}}},
      "patch": {"operationId": "updateUser", "responses": {"200": {"description": "Updated"}}},
      "delete": {"operationId": "deleteUser", "deprecated": true, "responses": {"204": {"description": "Deleted"}}}
    },
    "/users/{id}/avatar.{format}": {
      "get": {"operationId": "getAvatar", "responses": {"200": {"description": "PNG or WebP"}}}
    },
    "/sessions/{sessionId}": {"$ref": "#/components/pathItems/Session"}
  },
  "components": {
    "pathItems": {
      "Session": {
        "get": {"operationId": "getSession", "responses": {"200": {"description": "A session"}}},
        "delete": {"operationId": "endSession", "responses": {"204": {"description": "Ended"}}}
      }
    }
  }
}"##;

    /// A Swagger 2.0 billing service in JSON on the same host as accounts,
    /// kept apart by its base path `/svc-b`.
    const BILLING_SWAGGER_JSON: &str = r##"{
  "swagger": "2.0",
  "info": {"title": "Billing", "version": "3.2.1"},
  "host": "API.Example.com",
  "basePath": "/svc-b",
  "schemes": ["https"],
  "consumes": ["application/json"],
  "produces": ["application/json"],
  "paths": {
    "/users/{id}": {
      "get": {"operationId": "getBillingAccount", "responses": {"200": {"description": "Billing account of a user"}}}
    },
    "/invoices": {
      "get": {"operationId": "listInvoices", "responses": {"200": {"description": "Invoices"}}},
      "post": {"operationId": "createInvoice", "parameters": [{"in": "body", "name": "invoice", "schema": {"$ref": "#/definitions/Invoice"}}], "responses": {"201": {"description": "Created"}}}
    },
    "/invoices/{invoiceId}": {
      "get": {"operationId": "getInvoice", "responses": {"200": {"description": "An invoice"}}},
      "put": {"operationId": "replaceInvoice", "x-deprecated": true, "responses": {"200": {"description": "Replaced"}}}
    },
    "/invoices/{invoiceId}/pdf": {
      "get": {"operationId": "getInvoicePdf", "produces": ["application/pdf"], "responses": {"200": {"description": "PDF"}}}
    }
  },
  "definitions": {
    "Invoice": {"type": "object", "properties": {"amount": {"type": "integer"}}}
  }
}"##;

    type Row = (Option<String>, String, String, bool);

    fn rows(spec: &ApiSpec) -> Vec<Row> {
        spec.operations
            .iter()
            .map(|operation| {
                (
                    operation.host.clone(),
                    operation.method.clone(),
                    operation.path.clone(),
                    operation.deprecated,
                )
            })
            .collect()
    }

    fn row(host: Option<&str>, method: &str, path: &str, deprecated: bool) -> Row {
        (
            host.map(str::to_string),
            method.to_string(),
            path.to_string(),
            deprecated,
        )
    }

    fn parsed(document: &str) -> ApiSpec {
        parse_spec(document.as_bytes()).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Accounts v1 and billing, loaded at times 1 and 2.
    fn two_services() -> SpecCatalog {
        let mut catalog = SpecCatalog::new();
        catalog
            .load_document("accounts", ACCOUNTS_V1_JSON.as_bytes(), 1)
            .expect("accounts v1 loads");
        catalog
            .load_document("billing", BILLING_SWAGGER_JSON.as_bytes(), 2)
            .expect("billing loads");
        catalog
    }

    /// Accounts v1 then v2, billing and orders.
    fn full_catalog() -> SpecCatalog {
        let mut catalog = two_services();
        catalog
            .load_document("accounts", ACCOUNTS_V2_JSON.as_bytes(), 3)
            .expect("accounts v2 loads");
        catalog
            .load_document("orders", ORDERS_V2_YAML.as_bytes(), 4)
            .expect("orders loads");
        catalog
    }

    #[test]
    fn oas30_yaml_operations() {
        let spec = parsed(ORDERS_V2_YAML);
        assert_eq!(spec.openapi_version, "3.0.3", "declared version");
        assert_eq!(spec.title.as_deref(), Some("Orders API"), "title");
        assert_eq!(spec.version.as_deref(), Some("2.4.0"), "API version");

        let public = Some("api.shop.example.com");
        let expected = vec![
            row(public, "GET", "/orders-api/v2/healthz", false),
            row(None, "GET", "/orders-api/v2/healthz", false),
            row(public, "GET", "/orders-api/v2/orders", false),
            row(None, "GET", "/orders-api/v2/orders", false),
            row(public, "POST", "/orders-api/v2/orders", false),
            row(None, "POST", "/orders-api/v2/orders", false),
            row(public, "GET", "/orders-api/v2/orders/export", true),
            row(None, "GET", "/orders-api/v2/orders/export", true),
            row(public, "GET", "/orders-api/v2/orders/{orderId}", false),
            row(None, "GET", "/orders-api/v2/orders/{orderId}", false),
            row(public, "DELETE", "/orders-api/v2/orders/{orderId}", true),
            row(None, "DELETE", "/orders-api/v2/orders/{orderId}", true),
            row(
                public,
                "POST",
                "/orders-api/v2/orders/{orderId}/cancellation",
                false,
            ),
            row(
                None,
                "POST",
                "/orders-api/v2/orders/{orderId}/cancellation",
                false,
            ),
            row(
                Some("events.shop.example.com"),
                "GET",
                "/orders/{orderId}/events",
                false,
            ),
            row(
                public,
                "GET",
                "/orders-api/v2/orders/{orderId}/invoice.{format}",
                false,
            ),
            row(
                None,
                "GET",
                "/orders-api/v2/orders/{orderId}/invoice.{format}",
                false,
            ),
            row(
                public,
                "GET",
                "/orders-api/v2/orders/{orderId}/items/{itemId}",
                false,
            ),
            row(
                None,
                "GET",
                "/orders-api/v2/orders/{orderId}/items/{itemId}",
                false,
            ),
        ];
        assert_eq!(rows(&spec), expected);
    }

    #[test]
    fn oas31_json_operations() {
        let spec = parsed(ACCOUNTS_V1_JSON);
        assert_eq!(spec.openapi_version, "3.1.0", "declared version");
        assert_eq!(spec.title.as_deref(), Some("Accounts"), "title");
        assert_eq!(spec.version.as_deref(), Some("1.0.0"), "API version");

        let host = Some("api.example.com");
        let expected = vec![
            row(host, "GET", "/svc-a/sessions/{sessionId}", false),
            row(host, "DELETE", "/svc-a/sessions/{sessionId}", false),
            row(host, "GET", "/svc-a/users", false),
            row(host, "POST", "/svc-a/users", false),
            row(host, "GET", "/svc-a/users/me", false),
            row(host, "GET", "/svc-a/users/{userId}", false),
            row(host, "DELETE", "/svc-a/users/{userId}", false),
            row(host, "PATCH", "/svc-a/users/{userId}", false),
            row(host, "GET", "/svc-a/users/{userId}/legacy-profile", false),
        ];
        assert_eq!(rows(&spec), expected, "webhooks are not operations");
    }

    #[test]
    fn swagger20_json_operations() {
        let spec = parsed(BILLING_SWAGGER_JSON);
        assert_eq!(spec.openapi_version, "2.0", "declared version");
        assert_eq!(spec.title.as_deref(), Some("Billing"), "title");
        assert_eq!(spec.version.as_deref(), Some("3.2.1"), "API version");

        let host = Some("api.example.com");
        let expected = vec![
            row(host, "GET", "/svc-b/invoices", false),
            row(host, "POST", "/svc-b/invoices", false),
            row(host, "GET", "/svc-b/invoices/{invoiceId}", false),
            row(host, "PUT", "/svc-b/invoices/{invoiceId}", true),
            row(host, "GET", "/svc-b/invoices/{invoiceId}/pdf", false),
            row(host, "GET", "/svc-b/users/{id}", false),
        ];
        assert_eq!(rows(&spec), expected);
    }

    #[test]
    fn base_paths_keep_services_apart() {
        let catalog = two_services();
        let accounts = catalog.status_of(Some("api.example.com"), "GET", "/svc-a/users/42");
        assert_eq!(
            accounts.spec(),
            Some("accounts"),
            "svc-a belongs to accounts"
        );
        assert_eq!(
            accounts.documented_path(),
            Some("/svc-a/users/{userId}"),
            "accounts template"
        );

        let billing = catalog.status_of(Some("api.example.com"), "GET", "/svc-b/users/{id}");
        assert_eq!(billing.spec(), Some("billing"), "svc-b belongs to billing");
        assert_eq!(
            billing.documented_path(),
            Some("/svc-b/users/{id}"),
            "billing template"
        );

        let neither = catalog.status_of(Some("api.example.com"), "GET", "/users/42");
        assert_eq!(neither.status, SpecStatus::Shadow, "no base path, no spec");
    }

    #[test]
    fn documented_status() {
        let catalog = full_catalog();
        let found = catalog.status_of(Some("api.example.com"), "GET", "/svc-a/users/{id}");
        assert_eq!(found.status, SpecStatus::Documented, "status");
        assert_eq!(found.reason, None, "no reason");
        let operation = found.operation.expect("matched operation");
        assert_eq!(operation.spec, "accounts", "spec");
        assert_eq!(operation.revision, 2, "latest revision");
        assert_eq!(operation.version.as_deref(), Some("1.1.0"), "API version");
        assert_eq!(operation.path, "/svc-a/users/{id}", "template of v2");
    }

    #[test]
    fn deprecated_is_zombie() {
        let catalog = full_catalog();
        let cases = [
            (Some("api.example.com"), "DELETE", "/svc-a/users/7"),
            (Some("api.example.com"), "PUT", "/svc-b/invoices/{id}"),
            (
                Some("api.shop.example.com"),
                "GET",
                "/orders-api/v2/orders/export",
            ),
            (None, "DELETE", "/orders-api/v2/orders/{id}"),
        ];
        for (host, method, endpoint) in cases {
            let found = catalog.status_of(host, method, endpoint);
            assert_eq!(found.status, SpecStatus::Zombie, "{method} {endpoint}");
            assert_eq!(
                found.reason,
                Some(ZombieReason::Deprecated),
                "{method} {endpoint}"
            );
        }
    }

    #[test]
    fn removed_between_revisions() {
        let catalog = full_catalog();
        let found = catalog.status_of(
            Some("api.example.com"),
            "GET",
            "/svc-a/users/{id}/legacy-profile",
        );
        assert_eq!(found.status, SpecStatus::Zombie, "status");
        assert_eq!(found.reason, Some(ZombieReason::Removed), "reason");
        let operation = found.operation.expect("operation of the earlier revision");
        assert_eq!(operation.revision, 1, "last revision that had it");
        assert_eq!(
            operation.version.as_deref(),
            Some("1.0.0"),
            "its API version"
        );
        assert_eq!(
            operation.path, "/svc-a/users/{userId}/legacy-profile",
            "its template"
        );
    }

    #[test]
    fn renamed_parameter_is_not_removed() {
        let mut catalog = two_services();
        let outcome = catalog
            .load_document("accounts", ACCOUNTS_V2_JSON.as_bytes(), 3)
            .expect("v2 loads");
        assert_eq!(outcome.kind, LoadKind::Updated, "kind");
        assert_eq!(outcome.revision, 2, "revision");
        assert_eq!(outcome.added_operations, 1, "avatar is new");
        assert_eq!(outcome.removed_operations, 1, "legacy-profile is gone");
        assert_eq!(outcome.deprecated_operations, 1, "DELETE /users/{{id}}");

        let found = catalog.status_of(Some("api.example.com"), "PATCH", "/svc-a/users/9");
        assert_eq!(
            found.status,
            SpecStatus::Documented,
            "PATCH survives the rename"
        );
    }

    #[test]
    fn restored_operation_is_documented() {
        let mut catalog = full_catalog();
        let outcome = catalog
            .load_document("accounts", ACCOUNTS_V1_JSON.as_bytes(), 5)
            .expect("v1 loads again");
        assert_eq!(
            outcome.kind,
            LoadKind::Updated,
            "a rollback adds a revision"
        );
        assert_eq!(outcome.revision, 3, "third revision");

        let found = catalog.status_of(
            Some("api.example.com"),
            "GET",
            "/svc-a/users/1/legacy-profile",
        );
        assert_eq!(found.status, SpecStatus::Documented, "back in the latest");
        let avatar = catalog.status_of(Some("api.example.com"), "GET", "/svc-a/users/1/avatar.png");
        assert_eq!(
            avatar.reason,
            Some(ZombieReason::Removed),
            "avatar is removed now"
        );
    }

    #[test]
    fn same_content_twice() {
        let mut catalog = SpecCatalog::new();
        let first = catalog
            .load_document("billing", BILLING_SWAGGER_JSON.as_bytes(), 10)
            .expect("first load");
        let second = catalog
            .load_document("billing", BILLING_SWAGGER_JSON.as_bytes(), 20)
            .expect("second load");
        assert_eq!(first.kind, LoadKind::New, "first load");
        assert_eq!(second.kind, LoadKind::Unchanged, "second load");
        assert_eq!(second.revision, 1, "still the first revision");
        assert_eq!(second.operations, 6, "operations of the kept revision");

        let revisions = catalog.revisions("billing").expect("billing exists");
        assert_eq!(revisions.len(), 1, "one revision");
        assert_eq!(revisions[0].loaded_at_micros, 10, "first load time is kept");
        assert_eq!(
            revisions[0].checksum,
            content_checksum(BILLING_SWAGGER_JSON.as_bytes()),
            "checksum of the content"
        );
    }

    #[test]
    fn shadow_when_undocumented() {
        let catalog = full_catalog();
        let cases = [
            (Some("api.example.com"), "GET", "/svc-a/admin"),
            (Some("api.example.com"), "PUT", "/svc-a/users/me"),
            (Some("api.example.com"), "GET", "/svc-a/users/1/2"),
            (Some("other.example.com"), "GET", "/svc-a/users/1"),
            (Some("api.example.com"), "OPTIONS", "*"),
        ];
        for (host, method, endpoint) in cases {
            let found = catalog.status_of(host, method, endpoint);
            assert_eq!(found, SpecMatch::shadow(), "{host:?} {method} {endpoint}");
        }
    }

    #[test]
    fn most_specific_template_wins() {
        let catalog = full_catalog();
        let me = catalog.status_of(Some("api.example.com"), "GET", "/svc-a/users/me");
        assert_eq!(
            me.documented_path(),
            Some("/svc-a/users/me"),
            "literal first"
        );
        let other = catalog.status_of(Some("api.example.com"), "GET", "/svc-a/users/you");
        assert_eq!(
            other.documented_path(),
            Some("/svc-a/users/{id}"),
            "parameter otherwise"
        );
        let avatar = catalog.status_of(
            Some("api.example.com"),
            "GET",
            "/svc-a/users/{id}/avatar.webp",
        );
        assert_eq!(
            avatar.documented_path(),
            Some("/svc-a/users/{id}/avatar.{format}"),
            "mixed segment"
        );
    }

    #[test]
    fn host_rules() {
        let catalog = full_catalog();
        let cases = [
            (
                Some("API.EXAMPLE.COM"),
                "/svc-a/users",
                "accounts",
                "case-insensitive host",
            ),
            (
                Some("api.example.com:8443"),
                "/svc-a/users",
                "accounts",
                "port ignored when the spec names none",
            ),
            (
                Some("api.example.com."),
                "/svc-a/users",
                "accounts",
                "trailing dot of a FQDN",
            ),
            (None, "/svc-a/users", "accounts", "request without a host"),
            (
                Some("anything.example.net"),
                "/orders-api/v2/orders",
                "orders",
                "relative server matches any host",
            ),
            (
                Some("events.shop.example.com"),
                "/orders/{id}/events",
                "orders",
                "path-level server",
            ),
        ];
        for (host, endpoint, spec, case) in cases {
            let found = catalog.status_of(host, "GET", endpoint);
            assert_eq!(found.spec(), Some(spec), "{case}");
        }

        let wrong_host =
            catalog.status_of(Some("api.shop.example.com"), "GET", "/orders/{id}/events");
        assert_eq!(
            wrong_host.status,
            SpecStatus::Shadow,
            "path-level server elsewhere"
        );

        let hostless =
            catalog.status_of(Some("api.shop.example.com"), "GET", "/orders-api/v2/orders");
        let operation = hostless.operation.expect("matched");
        assert_eq!(
            operation.host.as_deref(),
            Some("api.shop.example.com"),
            "the named host beats the relative server"
        );
        let unknown = catalog.status_of(None, "GET", "/orders-api/v2/orders");
        let operation = unknown.operation.expect("matched");
        assert_eq!(
            operation.host, None,
            "without a request host the relative server comes first"
        );
    }

    #[test]
    fn documented_port_is_compared() {
        let document = r#"{"openapi": "3.0.3", "servers": [{"url": "http://internal.example.com:8080/api"}],
            "paths": {"/jobs": {"get": {}}}}"#;
        let mut catalog = SpecCatalog::new();
        catalog
            .load_document("jobs", document.as_bytes(), 1)
            .expect("loads");
        let cases = [
            (Some("internal.example.com:8080"), SpecStatus::Documented),
            (Some("internal.example.com"), SpecStatus::Documented),
            (Some("internal.example.com:9090"), SpecStatus::Shadow),
        ];
        for (host, expected) in cases {
            let found = catalog.status_of(host, "GET", "/api/jobs");
            assert_eq!(found.status, expected, "host {host:?}");
        }
    }

    #[test]
    fn method_is_case_insensitive() {
        let catalog = full_catalog();
        for method in ["get", "Get", "GET", " GET "] {
            let found = catalog.status_of(Some("api.example.com"), method, "/svc-b/invoices");
            assert_eq!(found.status, SpecStatus::Documented, "method {method:?}");
        }
        let head = catalog.status_of(Some("api.example.com"), "HEAD", "/svc-b/invoices");
        assert_eq!(head.status, SpecStatus::Shadow, "HEAD is not GET");
    }

    #[test]
    fn endpoint_forms_match() {
        let catalog = full_catalog();
        let cases = [
            "/svc-b/invoices/{id}/pdf",
            "/svc-b/invoices/inv_8f2KJ2n3LmQ/pdf",
            "/svc-b/invoices/{uuid}/pdf",
            "/svc-b//invoices/7/pdf",
        ];
        for endpoint in cases {
            let found = catalog.status_of(Some("api.example.com"), "GET", endpoint);
            assert_eq!(
                found.documented_path(),
                Some("/svc-b/invoices/{invoiceId}/pdf"),
                "endpoint {endpoint}"
            );
        }
        let trailing = catalog.status_of(Some("api.example.com"), "GET", "/svc-b/invoices/");
        assert_eq!(
            trailing.status,
            SpecStatus::Shadow,
            "trailing slash is kept"
        );
    }

    #[test]
    fn several_specs_are_searched() {
        let catalog = full_catalog();
        let names: Vec<&str> = catalog.spec_names().collect();
        assert_eq!(names, ["accounts", "billing", "orders"], "spec names");
        let orders = catalog.status_of(Some("api.shop.example.com"), "GET", "/healthz");
        assert_eq!(
            orders.status,
            SpecStatus::Shadow,
            "healthz is under the base path"
        );
        let orders = catalog.status_of(
            Some("api.shop.example.com"),
            "GET",
            "/orders-api/v2/healthz",
        );
        assert_eq!(orders.spec(), Some("orders"), "merged path item");
    }

    #[test]
    fn documented_operations_list() {
        let catalog = full_catalog();
        let operations = catalog.documented_operations();
        let count = |spec: &str| operations.iter().filter(|o| o.spec == spec).count();
        assert_eq!(count("accounts"), 9, "accounts v2 operations");
        assert_eq!(count("billing"), 6, "billing operations");
        assert_eq!(count("orders"), 19, "orders operations");

        let legacy = operations
            .iter()
            .any(|operation| operation.path.contains("legacy-profile"));
        assert!(!legacy, "removed operations are not listed");

        let delete_user = operations
            .iter()
            .find(|operation| operation.method == "DELETE" && operation.path == "/svc-a/users/{id}")
            .expect("DELETE /svc-a/users/{id} is listed");
        assert_eq!(
            delete_user,
            &DocumentedOperation {
                spec: "accounts".into(),
                revision: 2,
                version: Some("1.1.0".into()),
                host: Some("api.example.com".into()),
                method: "DELETE".into(),
                path: "/svc-a/users/{id}".into(),
                deprecated: true,
            }
        );
    }

    #[test]
    fn templates_grouped_by_host() {
        let catalog = two_services();
        let grouped = catalog.path_templates_by_host();
        let hosts: Vec<Option<&str>> = grouped.keys().map(Option::as_deref).collect();
        assert_eq!(
            hosts,
            [Some("api.example.com")],
            "one host for both services"
        );
        assert_eq!(
            grouped[&Some("api.example.com".to_string())],
            [
                "/svc-a/sessions/{sessionId}",
                "/svc-a/users",
                "/svc-a/users/me",
                "/svc-a/users/{userId}",
                "/svc-a/users/{userId}/legacy-profile",
                "/svc-b/invoices",
                "/svc-b/invoices/{invoiceId}",
                "/svc-b/invoices/{invoiceId}/pdf",
                "/svc-b/users/{id}",
            ],
            "templates of both services, sorted, each once"
        );
    }

    #[test]
    fn templates_for_one_host() {
        let catalog = full_catalog();
        let events = catalog.path_templates_for_host(Some("events.shop.example.com:443"));
        assert_eq!(
            events,
            [
                "/orders-api/v2/healthz",
                "/orders-api/v2/orders",
                "/orders-api/v2/orders/export",
                "/orders-api/v2/orders/{orderId}",
                "/orders-api/v2/orders/{orderId}/cancellation",
                "/orders-api/v2/orders/{orderId}/invoice.{format}",
                "/orders-api/v2/orders/{orderId}/items/{itemId}",
                "/orders/{orderId}/events",
            ],
            "the host's own templates and those served on any host"
        );
        let everything = catalog.path_templates_for_host(None);
        assert_eq!(
            everything.len(),
            17,
            "every distinct template without a host"
        );
    }

    #[test]
    fn catalog_round_trips() {
        let catalog = full_catalog();
        let json = catalog.to_json();
        assert!(
            json.starts_with("{\"format_version\":1,"),
            "format version first: {}",
            &json[..40]
        );
        let restored = SpecCatalog::from_json(json.as_bytes()).expect("reads back");
        assert_eq!(restored, catalog, "same specs and revisions");
        let found = restored.status_of(
            Some("api.example.com"),
            "GET",
            "/svc-a/users/1/legacy-profile",
        );
        assert_eq!(
            found.reason,
            Some(ZombieReason::Removed),
            "index is rebuilt"
        );
    }

    #[test]
    fn documents_error_with_location() {
        let cases: [(&str, &str); 5] = [
            (
                "openapi: 3.0.3\npaths:\n  /users:\n    get: list users\n",
                "invalid value at /paths/~1users/get: expected an operation object, found a string",
            ),
            (
                "openapi: 3.0.3\npaths:\n  /users/{id}:\n    delete:\n      deprecated: yes\n",
                "invalid value at /paths/~1users~1{id}/delete/deprecated: expected a boolean, found a string",
            ),
            (
                "swagger: '2.0'\nhost: https://billing.example.com\npaths: {}\n",
                "invalid value at /host: `host` must be a host name with an optional port, without scheme or path, found \"https://billing.example.com\"",
            ),
            (
                "info:\n  title: Orders\npaths: {}\n",
                "the document has neither an `openapi` nor a `swagger` field at its root; add `openapi: 3.1.0` (or a 3.0.x version) or `swagger: \"2.0\"`",
            ),
            (
                "openapi: 3.0.3\nservers:\n  - url: https://{tenant}.example.com\npaths: {}\n",
                "invalid value at /servers/0/url: server URL \"https://{tenant}.example.com\" uses variable {tenant}, which `variables` does not define; add it with a `default`",
            ),
        ];
        for (document, expected) in cases {
            let error = parse_spec(document.as_bytes()).expect_err(document);
            assert_eq!(error.to_string(), expected, "document {document:?}");
        }
    }

    #[test]
    fn load_document_reports_parse_errors() {
        let mut catalog = SpecCatalog::new();
        let error = catalog
            .load_document("orders", b"openapi: 3.0.3\npaths: {", 1)
            .expect_err("invalid YAML");
        assert!(
            matches!(error, CatalogError::Document(SpecError::InvalidYaml { .. })),
            "error {error:?}"
        );
        assert!(catalog.is_empty(), "nothing is stored");
    }

    proptest! {
        #[test]
        fn status_never_panics(
            host in prop::option::of("[a-zA-Z0-9.:\\[\\]-]{0,24}"),
            method in "[a-zA-Z ]{0,8}",
            endpoint in "[/a-z{}.:%é-]{0,40}",
        ) {
            let catalog = full_catalog();
            let found = catalog.status_of(host.as_deref(), &method, &endpoint);
            prop_assert_eq!(found.status == SpecStatus::Shadow, found.operation.is_none());
        }
    }
}
