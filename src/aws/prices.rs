//! Prices: AWS's Price List Query API (GetProducts, whose answer is a list of JSON
//! documents, one per product) and EC2's spot price history. Read by `tether prices
//! refresh`; what the documents mean is `pricing::price_list_price`.

use aws_sdk_pricing::types::{Filter, FilterType};

use super::{classify, AwsError, Cloud};

/// The current spot price of an instance type in one zone.
#[derive(Clone, Debug, PartialEq)]
pub struct SpotPrice {
    pub instance_type: String,
    pub zone: String,
    pub usd_per_hour: f64,
}

impl Cloud {
    /// The Price List documents of `service`'s products whose `field` equals `value` for
    /// every filter (TERM_MATCH). One GetProducts call per page of 100.
    pub async fn price_list(
        &self,
        service: &str,
        filters: &[(&str, &str)],
    ) -> Result<Vec<String>, AwsError> {
        let filters: Result<Vec<Filter>, _> = filters
            .iter()
            .map(|(field, value)| {
                Filter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(*field)
                    .value(*value)
                    .build()
            })
            .collect();
        let filters = filters.map_err(|e| AwsError {
            operation: "GetProducts",
            resource: service.to_string(),
            code: None,
            message: e.to_string(),
            kind: super::AwsErrorKind::Service,
        })?;
        let mut pages = self
            .pricing
            .get_products()
            .service_code(service)
            .set_filters(Some(filters))
            .format_version("aws_v1")
            .max_results(100)
            .into_paginator()
            .send();
        let mut documents = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("GetProducts", service, e))?;
            documents.extend(page.price_list().iter().cloned());
        }
        Ok(documents)
    }

    /// The current spot price (Linux/UNIX) of each of `types` in each zone of the region
    /// that offers it: DescribeSpotPriceHistory from now, which gives each zone's price in
    /// force.
    pub async fn spot_prices(&self, types: &[String]) -> Result<Vec<SpotPrice>, AwsError> {
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let instance_types = types
            .iter()
            .map(|t| aws_sdk_ec2::types::InstanceType::from(t.as_str()))
            .collect();
        let mut pages = self
            .ec2
            .describe_spot_price_history()
            .set_instance_types(Some(instance_types))
            .product_descriptions("Linux/UNIX")
            .start_time(now)
            .into_paginator()
            .send();
        let mut prices = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeSpotPriceHistory", "", e))?;
            for entry in page.spot_price_history() {
                let (Some(instance_type), Some(zone), Some(price)) = (
                    entry.instance_type(),
                    entry.availability_zone(),
                    entry.spot_price().and_then(|p| p.parse::<f64>().ok()),
                ) else {
                    continue;
                };
                prices.push(SpotPrice {
                    instance_type: instance_type.as_str().to_string(),
                    zone: zone.to_string(),
                    usd_per_hour: price,
                });
            }
        }
        Ok(prices)
    }
}
