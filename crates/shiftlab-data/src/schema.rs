//! Table schemas described in small JSON files (`schemas/*.json` at the repository root).
//!
//! Every shiftlab table (dataset, predictions, metrics, runs, errors, stages) is declared once in
//! JSON so that the Rust writers, the Python reference checks and the docs agree on one source.
//! The format:
//!
//! ```json
//! {
//!   "name": "dataset", "version": 1, "doc": "what one row is",
//!   "fields": [
//!     {"name": "id", "type": "utf8", "nullable": false, "doc": "why it exists"},
//!     {"name": "image", "type": "struct<bytes: binary, path: utf8>", "nullable": false, "doc": "..."}
//!   ]
//! }
//! ```
//!
//! Types: `utf8` (alias `string`), `bool`, `binary`, `int8|16|32|64`, `uint8|16|32|64`,
//! `float32|64`, `timestamp` (microseconds, UTC), `timestamp[s|ms|us|ns]` or
//! `timestamp[unit, TZ]` (TZ `none` for a naive timestamp), `list<T>`, `fixed_size_list<T, N>`
//! and `struct<name: T, ...>`. `N` is a number or a parameter name (`dim`) that the writer binds
//! with [`SchemaDef::to_arrow_with`], for a column whose size only the run knows (a model's
//! embedding dimension). List items and struct children are nullable, as Arrow and Hugging
//! Face `datasets` make them by default. Each field's doc is kept in the Arrow field metadata
//! under `doc`, so it survives into Parquet files. `"required": true` marks a column that is
//! never null although Arrow-nullable (field metadata `required`), for tables that Hugging Face
//! `datasets` must read: it ignores its `huggingface` features for non-nullable fields.
//!
//! Crates with their own tables call [`parse`] on an `include_str!` of their JSON;
//! [`load`] serves the schemas this crate owns.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use serde::Deserialize;

use crate::error::DataError;

/// A schema file as written on disk.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaDef {
    /// Table name, e.g. `dataset`.
    pub name: String,
    /// Bumped when the layout changes incompatibly.
    #[serde(default)]
    pub version: u32,
    /// What one row is.
    #[serde(default)]
    pub doc: String,
    /// The columns, in order.
    pub fields: Vec<FieldDef>,
}

/// One column of a [`SchemaDef`].
#[derive(Debug, Clone, Deserialize)]
pub struct FieldDef {
    /// Column name.
    pub name: String,
    /// Type expression, see the module docs.
    #[serde(rename = "type")]
    pub ty: String,
    /// Arrow nullability (default false).
    #[serde(default)]
    pub nullable: bool,
    /// Never null in files shiftlab writes, even where the Arrow field is nullable (as Hugging
    /// Face `datasets` needs); kept in the field metadata as `required: true`.
    #[serde(default)]
    pub required: bool,
    /// Why the column exists.
    #[serde(default)]
    pub doc: String,
}

const DATASET_JSON: &str = include_str!("../../../schemas/dataset.json");

/// Arrow schema of a table owned by this crate (`"dataset"`).
pub fn load(name: &str) -> Result<Arc<Schema>, DataError> {
    match name {
        "dataset" => from_json(DATASET_JSON),
        other => Err(DataError::Schema(format!(
            "unknown built-in schema '{other}'"
        ))),
    }
}

/// The dataset table's Arrow schema, without file-level metadata.
pub fn dataset() -> Arc<Schema> {
    // The JSON is compiled in and covered by tests, so failure here is a build defect.
    load("dataset").expect("built-in schemas/dataset.json is valid")
}

/// Arrow schema of a JSON schema document, e.g. `from_json(include_str!("predictions.json"))`.
pub fn from_json(json: &str) -> Result<Arc<Schema>, DataError> {
    Ok(Arc::new(parse(json)?.to_arrow()?))
}

/// Parses a schema JSON document.
pub fn parse(json: &str) -> Result<SchemaDef, DataError> {
    serde_json::from_str(json).map_err(|e| DataError::Schema(format!("schema JSON: {e}")))
}

impl SchemaDef {
    /// Converts to an Arrow schema (field docs go to field metadata `doc`).
    pub fn to_arrow(&self) -> Result<Schema, DataError> {
        self.to_arrow_with(&[])
    }

    /// Converts to an Arrow schema with the size parameters of `fixed_size_list` bound, e.g.
    /// `&[("dim", 192)]`; an unbound parameter is an error.
    pub fn to_arrow_with(&self, params: &[(&str, i32)]) -> Result<Schema, DataError> {
        let fields = self
            .fields
            .iter()
            .map(|f| {
                let ty = parse_type_with(&f.ty, params).map_err(|e| {
                    DataError::Schema(format!("{}: field '{}': {e}", self.name, f.name))
                })?;
                let mut meta = HashMap::new();
                if !f.doc.is_empty() {
                    meta.insert("doc".to_string(), f.doc.clone());
                }
                if f.required {
                    meta.insert("required".to_string(), "true".to_string());
                }
                Ok(Field::new(&f.name, ty, f.nullable).with_metadata(meta))
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        Ok(Schema::new(fields))
    }
}

/// Parses one type expression such as `list<struct<a: int32, b: utf8>>`.
pub fn parse_type(expr: &str) -> Result<DataType, String> {
    parse_type_with(expr, &[])
}

/// [`parse_type`] with the size parameters of `fixed_size_list<T, name>` bound.
pub fn parse_type_with(expr: &str, params: &[(&str, i32)]) -> Result<DataType, String> {
    let mut p = TypeParser {
        s: expr.as_bytes(),
        pos: 0,
        params,
    };
    let ty = p.ty()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(format!("trailing text in type '{expr}' at byte {}", p.pos));
    }
    Ok(ty)
}

/// Recursive-descent parser over the type grammar.
struct TypeParser<'a> {
    s: &'a [u8],
    pos: usize,
    params: &'a [(&'a str, i32)],
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || b"_/-".contains(&self.s[self.pos]))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(format!("expected a name at byte {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.pos))
        }
    }

    fn ty(&mut self) -> Result<DataType, String> {
        let name = self.ident()?;
        Ok(match name.as_str() {
            "utf8" | "string" => DataType::Utf8,
            "bool" => DataType::Boolean,
            "binary" => DataType::Binary,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" => DataType::Float32,
            "float64" => DataType::Float64,
            "timestamp" => self.timestamp()?,
            "list" => {
                self.expect(b'<')?;
                let item = self.ty()?;
                self.expect(b'>')?;
                DataType::List(Arc::new(Field::new_list_field(item, true)))
            }
            "fixed_size_list" => {
                self.expect(b'<')?;
                let item = self.ty()?;
                self.expect(b',')?;
                let size = self.size()?;
                self.expect(b'>')?;
                DataType::FixedSizeList(Arc::new(Field::new_list_field(item, true)), size)
            }
            "struct" => DataType::Struct(self.struct_fields()?),
            other => return Err(format!("unknown type '{other}'")),
        })
    }

    /// A `fixed_size_list` size: a positive number or a bound parameter.
    fn size(&mut self) -> Result<i32, String> {
        let word = self.ident()?;
        let size = match word.parse::<i32>() {
            Ok(n) => n,
            Err(_) => self
                .params
                .iter()
                .find(|(name, _)| *name == word)
                .map(|&(_, n)| n)
                .ok_or_else(|| {
                    format!(
                        "fixed_size_list size '{word}' is neither a number nor a bound parameter"
                    )
                })?,
        };
        if size < 1 {
            return Err(format!("fixed_size_list size '{word}' must be at least 1"));
        }
        Ok(size)
    }

    fn timestamp(&mut self) -> Result<DataType, String> {
        if !self.eat(b'[') {
            return Ok(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into()),
            ));
        }
        let unit = match self.ident()?.as_str() {
            "s" => TimeUnit::Second,
            "ms" => TimeUnit::Millisecond,
            "us" => TimeUnit::Microsecond,
            "ns" => TimeUnit::Nanosecond,
            u => return Err(format!("unknown timestamp unit '{u}'")),
        };
        let tz = if self.eat(b',') {
            Some(self.ident()?).filter(|t| t != "none")
        } else {
            Some("UTC".to_string())
        };
        self.expect(b']')?;
        Ok(DataType::Timestamp(unit, tz.map(Into::into)))
    }

    fn struct_fields(&mut self) -> Result<Fields, String> {
        self.expect(b'<')?;
        let mut fields = Vec::new();
        loop {
            let name = self.ident()?;
            self.expect(b':')?;
            fields.push(Field::new(name, self.ty()?, true));
            if !self.eat(b',') {
                break;
            }
        }
        self.expect(b'>')?;
        Ok(Fields::from(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_schema_has_hf_image_struct() {
        let s = dataset();
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "split",
                "label",
                "image",
                "width",
                "height",
                "channels",
                "corruption",
                "severity"
            ]
        );
        let DataType::Struct(children) = s.field_with_name("image").unwrap().data_type() else {
            panic!("image is not a struct");
        };
        assert_eq!(children[0].name(), "bytes");
        assert_eq!(children[0].data_type(), &DataType::Binary);
        assert_eq!(children[1].data_type(), &DataType::Utf8);
        // All nullable for `datasets`; the never-null ones say so in their metadata.
        assert!(s.fields().iter().all(|f| f.is_nullable()));
        let required = |n: &str| {
            s.field_with_name(n)
                .unwrap()
                .metadata()
                .contains_key("required")
        };
        assert!(required("label") && required("image") && !required("severity"));
    }

    #[test]
    fn parses_every_type_form() {
        let t = parse_type("list<struct<a: int8, b: timestamp[ms, none], c: float64>>").unwrap();
        let DataType::List(item) = t else {
            panic!("not a list")
        };
        let DataType::Struct(f) = item.data_type() else {
            panic!("not a struct")
        };
        assert_eq!(
            f[1].data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            parse_type("timestamp").unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        for ok in [
            "bool", "binary", "int16", "int32", "float32", "uint64", "string",
        ] {
            parse_type(ok).unwrap();
        }
    }

    #[test]
    fn fixed_size_lists_take_a_number_or_a_bound_parameter() {
        let item = Arc::new(Field::new_list_field(DataType::Float32, true));
        assert_eq!(
            parse_type("fixed_size_list<float32, 3>").unwrap(),
            DataType::FixedSizeList(item.clone(), 3)
        );
        assert_eq!(
            parse_type_with("fixed_size_list<float32, dim>", &[("dim", 192)]).unwrap(),
            DataType::FixedSizeList(item, 192)
        );
        let unbound = parse_type("fixed_size_list<float32, dim>").unwrap_err();
        assert!(unbound.contains("'dim'"), "{unbound}");
        assert!(parse_type("fixed_size_list<float32, 0>")
            .unwrap_err()
            .contains("at least 1"));
    }

    #[test]
    fn rejects_bad_types() {
        assert!(parse_type("int128").unwrap_err().contains("unknown type"));
        assert!(parse_type("list<int8")
            .unwrap_err()
            .contains("expected '>'"));
        assert!(parse_type("int8 x").unwrap_err().contains("trailing"));
        let err = parse(r#"{"name":"t","fields":[{"name":"a","type":"nope"}]}"#)
            .unwrap()
            .to_arrow()
            .unwrap_err();
        assert!(err.to_string().contains("field 'a'"), "{err}");
    }
}
