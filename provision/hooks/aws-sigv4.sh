# shellcheck shell=bash
# AWS Signature Version 4 in bash + openssl, enough to call one AWS query
# API (installed as /usr/lib/skiff/aws-sigv4.sh; sourced, never run).
#
# Keys never reach a file. The HMAC keys do pass through openssl's argv:
# they are the instance role's credentials, which any process on the VM can
# read from IMDS anyway (see docs/deployment.md, "AWS").

_sigv4_sha256_hex() {
  # stdin -> lowercase hex SHA-256
  openssl dgst -sha256 -r | cut -d' ' -f1
}

_sigv4_hmac_hex() {
  # _sigv4_hmac_hex KEYHEX MESSAGE -> hex HMAC-SHA256(key, message)
  printf '%s' "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -r | cut -d' ' -f1
}

_sigv4_hex() {
  printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

# sigv4_authorization METHOD HOST PATH QUERY BODY REGION SERVICE AMZDATE CONTENT_TYPE
# Prints the value of the Authorization header. Credentials come from
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when set,
# AWS_SESSION_TOKEN (sent as x-amz-security-token, which is signed).
# QUERY must already be in canonical form (sorted, URI-encoded); CONTENT_TYPE
# may be empty (then the header is neither sent nor signed).
sigv4_authorization() {
  local method=$1 host=$2 path=$3 query=$4 body=$5 region=$6 service=$7
  local amzdate=$8 ctype=$9
  local day=${amzdate%%T*}
  local scope="$day/$region/$service/aws4_request"
  local cheaders="" sheaders=""
  if [ -n "$ctype" ]; then
    cheaders+="content-type:$ctype"$'\n'
    sheaders+="content-type;"
  fi
  cheaders+="host:$host"$'\n'"x-amz-date:$amzdate"$'\n'
  sheaders+="host;x-amz-date"
  if [ -n "${AWS_SESSION_TOKEN:-}" ]; then
    cheaders+="x-amz-security-token:$AWS_SESSION_TOKEN"$'\n'
    sheaders+=";x-amz-security-token"
  fi
  local payload_hash creq creq_hash sts k
  payload_hash=$(printf '%s' "$body" | _sigv4_sha256_hex)
  creq="$method"$'\n'"$path"$'\n'"$query"$'\n'"$cheaders"$'\n'"$sheaders"$'\n'"$payload_hash"
  creq_hash=$(printf '%s' "$creq" | _sigv4_sha256_hex)
  sts="AWS4-HMAC-SHA256"$'\n'"$amzdate"$'\n'"$scope"$'\n'"$creq_hash"
  k=$(_sigv4_hmac_hex "$(_sigv4_hex "AWS4$AWS_SECRET_ACCESS_KEY")" "$day")
  k=$(_sigv4_hmac_hex "$k" "$region")
  k=$(_sigv4_hmac_hex "$k" "$service")
  k=$(_sigv4_hmac_hex "$k" "aws4_request")
  printf 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' \
    "$AWS_ACCESS_KEY_ID" "$scope" "$sheaders" "$(_sigv4_hmac_hex "$k" "$sts")"
}
