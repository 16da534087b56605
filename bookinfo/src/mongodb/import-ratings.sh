#!/bin/bash
# Seeds the ratings collection on the first start of the mongodb image: the official mongo image
# runs /docker-entrypoint-initdb.d/*.sh against a temporary local mongod while the data directory
# is still empty. ratings-v2 reads db "test", collection "ratings", field "rating".
set -euo pipefail

seed=/seed/ratings.json
# The seed may be one JSON array or one document per line; mongoimport needs to be told which.
array_flag=()
if [[ "$(tr -d '[:space:]' <"$seed" | head -c 1)" == "[" ]]; then
    array_flag=(--jsonArray)
fi
mongoimport --host localhost --db test --collection ratings --drop "${array_flag[@]}" --file "$seed"
