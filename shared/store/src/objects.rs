//! The S3 objects timeline entries keep for their interactions (raw mail): the one S3 client
//! builder, and deleting every version of an object when its customer is erased.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use throughline_model::StoredObject;

use crate::StoreError;

/// An S3 client for this configuration: path-style addresses when an endpoint is overridden (a
/// local emulator has no bucket subdomains), and checksums only where an operation requires
/// them (the emulator would store aws-chunked bodies verbatim).
pub fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let local = aws.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let mut config = aws_sdk_s3::config::Builder::from(aws).force_path_style(local);
    if local {
        config = config.request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// An S3 request that failed, as the store's error (503: retry later).
pub fn s3_failed<E: std::error::Error + 'static>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::ObjectStore {
        operation,
        message: DisplayErrorContext(e).to_string(),
    }
}

/// Deletes every version of an object, and its delete markers (a versioned bucket keeps a
/// plain delete as an old version). An object or bucket already gone is done.
pub(crate) async fn delete_every_version(s3: &aws_sdk_s3::Client, object: &StoredObject) -> Result<(), StoreError> {
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let listed = match s3
            .list_object_versions()
            .bucket(&object.bucket)
            .prefix(&object.key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
        {
            Ok(listed) => listed,
            Err(e) if e.as_service_error().and_then(|e| e.code()) == Some("NoSuchBucket") => return Ok(()),
            Err(e) => return Err(s3_failed("ListObjectVersions")(e)),
        };
        // The prefix also matches longer keys: only this key's versions are deleted.
        let versions = listed
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(listed.delete_markers().iter().map(|m| (m.key(), m.version_id())))
            .filter(|(key, _)| *key == Some(object.key.as_str()));
        for (_, version) in versions {
            s3.delete_object()
                .bucket(&object.bucket)
                .key(&object.key)
                .set_version_id(version.map(str::to_owned))
                .send()
                .await
                .map_err(s3_failed("DeleteObject"))?;
        }
        if listed.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = listed.next_key_marker().map(str::to_owned);
        version_marker = listed.next_version_id_marker().map(str::to_owned);
        if key_marker.is_none() && version_marker.is_none() {
            return Ok(());
        }
    }
}
