//! The timeline API's OpenAPI document, and a check of real answers against it: the operation
//! is found by method and path template, and the body validated against the response schema
//! of its status. The validator covers the JSON Schema the document uses: `type` (one or a
//! list), `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `oneOf`,
//! `anyOf`, `allOf` and `$ref` to `#/components/...`; `format` and `pattern` are not checked.

use serde_json::Value;

pub struct Spec {
    document: Value,
}

impl Spec {
    /// The document, read and parsed once per test binary.
    pub fn load() -> &'static Self {
        static SPEC: std::sync::OnceLock<Spec> = std::sync::OnceLock::new();
        SPEC.get_or_init(Self::read)
    }

    fn read() -> Self {
        let path = throughline_localstack::workspace_root().join("functions/timeline-api/openapi.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let document: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("openapi.yaml: {e}"));
        Self { document }
    }

    /// Every `(METHOD, template)` the document describes.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut operations = Vec::new();
        for (template, item) in self.document["paths"].as_object().expect("paths") {
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_some() {
                    operations.push((method.to_uppercase(), template.clone()));
                }
            }
        }
        operations.sort();
        operations
    }

    /// The path template a concrete path matches.
    fn template_for(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.document["paths"].as_object()?.keys().find_map(|template| {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            let matches = parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| (p.starts_with('{') && p.ends_with('}')) || p == s);
            matches.then(|| template.clone())
        })
    }

    /// Checks a response against the document; the list of mismatches otherwise.
    pub fn check_response(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), Vec<String>> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        let template = self
            .template_for(path)
            .ok_or_else(|| vec![format!("no path in the document matches {path}")])?;
        let operation = &self.document["paths"][&template][method.to_lowercase()];
        if operation.is_null() {
            return Err(vec![format!("{method} {template} is not in the document")]);
        }
        let mut response = operation["responses"]
            .get(status.to_string())
            .or_else(|| operation["responses"].get("default"))
            .ok_or_else(|| vec![format!("{method} {template} documents no {status} response")])?
            .clone();
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            response = self.resolve(reference).clone();
        }
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Err(vec![format!(
                "{method} {template} {status} has no application/json schema"
            )]);
        }
        let mut errors = Vec::new();
        self.validate(schema, body, "$", &mut errors);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn resolve(&self, reference: &str) -> &Value {
        let pointer = reference.strip_prefix('#').expect("local references only");
        self.document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.yaml: unresolved {reference}"))
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return self.validate(self.resolve(reference), value, at, errors);
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.validate(part, value, at, errors);
            }
        }
        for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
                let passing = options
                    .iter()
                    .filter(|option| {
                        let mut e = Vec::new();
                        self.validate(option, value, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                if passing == 0 || (exactly_one && passing > 1) {
                    errors.push(format!("{at}: matches {passing} of the {keyword} schemas"));
                }
            }
        }
        if let Some(expected) = schema.get("type") {
            let types: Vec<&str> = match expected {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, value)) {
                errors.push(format!("{at}: expected {types:?}, got {}", type_name(value)));
                return;
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {options:?}"));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            errors.push(format!("{at}: expected {constant}"));
        }
        if let Value::Object(object) = value {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        errors.push(format!("{at}: required property {name} is missing"));
                    }
                }
            }
            for (name, property) in object {
                match properties.and_then(|p| p.get(name)) {
                    Some(property_schema) => self.validate(property_schema, property, &format!("{at}.{name}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{at}: property {name} is not documented")),
                        Some(additional @ Value::Object(_)) => {
                            self.validate(additional, property, &format!("{at}.{name}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.validate(item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> Spec {
        Spec {
            document: json!({
                "paths": { "/things/{id}": { "get": { "responses": {
                    "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } }
                } } } },
                "components": { "schemas": { "Thing": {
                    "type": "object", "additionalProperties": false, "required": ["id"],
                    "properties": {
                        "id": { "type": "string" },
                        "kind": { "enum": ["a", "b"] },
                        "tags": { "type": "array", "items": { "type": "string" } },
                        "note": { "type": ["string", "null"] }
                    }
                } } }
            }),
        }
    }

    #[test]
    fn the_validator_catches_each_kind_of_drift() {
        let s = spec();
        assert!(
            s.check_response("GET", "/things/1?x=y", 200, &json!({"id": "1", "note": null}))
                .is_ok()
        );
        for (body, expected) in [
            (json!({}), "required property id"),
            (json!({"id": 1}), "expected [\"string\"]"),
            (json!({"id": "1", "kind": "c"}), "is not one of"),
            (json!({"id": "1", "tags": [1]}), "$.tags[0]"),
            (json!({"id": "1", "extra": true}), "not documented"),
        ] {
            let errors = s.check_response("GET", "/things/1", 200, &body).unwrap_err();
            assert!(errors.iter().any(|e| e.contains(expected)), "{body}: {errors:?}");
        }
        assert!(s.check_response("GET", "/things/1", 404, &json!({})).is_err());
        assert!(s.check_response("POST", "/things/1", 200, &json!({"id": "1"})).is_err());
        assert!(s.check_response("GET", "/other", 200, &json!({})).is_err());
    }
}
