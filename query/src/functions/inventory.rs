//! Scalar functions of the inventory views.
//!
//! `auth_scheme_names(mask)` turns the `auth_schemes` bit mask of the views
//! table into the list of scheme names, in the fixed order `none`, `basic`,
//! `bearer`, `api_key`, `mtls`, `other`.

use std::sync::Arc;

use apitrail_storage::views::auth_scheme_names;
use arrow::array::{AsArray, ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, Int32Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Returns the inventory's scalar functions, for registration.
pub fn inventory_functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(AuthSchemeNames::new())]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AuthSchemeNames {
    signature: Signature,
}

impl AuthSchemeNames {
    fn new() -> Self {
        AuthSchemeNames {
            signature: Signature::exact(vec![DataType::Int32], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for AuthSchemeNames {
    fn name(&self) -> &str {
        "auth_scheme_names"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let masks = args.args[0].to_array(args.number_rows)?;
        let masks = masks.as_primitive::<Int32Type>();
        let mut names = ListBuilder::new(StringBuilder::new());
        for mask in masks.iter() {
            match mask {
                Some(mask) => {
                    for name in auth_scheme_names(mask) {
                        names.values().append_value(name);
                    }
                    names.append(true);
                }
                None => names.append(false),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(names.finish())))
    }
}
