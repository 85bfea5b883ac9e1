#!/bin/sh
# Includes go only downward, in the order docs/ARCHITECTURE.md writes down once
# ("Include order: ..."): tests/tools/check_includes.py on the tree must find no
# upward include and no pair of folders that include each other. The checker is
# itself checked on small trees that break each rule.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHECK="python3 $ROOT/tests/tools/check_includes.py"
ORDER=$ROOT/docs/ARCHITECTURE.md

if $CHECK "$ROOT" "$ORDER" >"$TMP/out" 2>&1; then
    pass "no upward includes and no folders that include each other"
else
    fail "includes go only downward" "$(grep -v 'include problems$' "$TMP/out" | head -5 | tr '\n' ';')"
fi

# every folder holding C code is placed in the order
unplaced=""
for d in "$ROOT"/*/; do
    d=$(basename "$d")
    case "$d" in tests | bench | build | build-san) continue ;; esac
    ls "$ROOT/$d"/*.c "$ROOT/$d"/*.h >/dev/null 2>&1 || continue
    grep "^Include order:" "$ORDER" | tr '<,' '  ' | tr -s ' ' '\n' | grep -qx "$d" || unplaced="$unplaced $d/"
done
if [ -z "$unplaced" ]; then pass "every folder of C code is in the include order"; else fail "folders in the include order" "missing:$unplaced"; fi

# small trees the checker must refuse, naming the file and the include
T=$TMP/tree
mk() { mkdir -p "$T/$(dirname "$1")" && printf '%s\n' "$2" >"$T/$1"; }
echo 'Include order: low < mid, side < high < main.c' >"$T.order"

mk low/a.h '#include <stdio.h>'
mk mid/b.c '#include "../low/a.h"'
mk high/c.c '#include "../mid/b.h"'
mk main.c '#include "high/c.h"'
expect_exit "checker accepts a tree that includes only downward" 0 $CHECK "$T" "$T.order"

mk low/up.c '#include "../mid/b.h"'
expect_exit "an upward include fails" 1 $CHECK "$T" "$T.order"
expect_contains "the upward include is named with its file" "$TMP/out" 'low/up.c: #include "../mid/b.h" reaches up'
rm "$T/low/up.c"

mk side/s.c '#include "../mid/m.h"'
mk mid/m.c '#include "../side/s.h"'
expect_exit "folders at the same height that include each other fail" 1 $CHECK "$T" "$T.order"
expect_contains "the pair of folders is named" "$TMP/out" "folders mid/ and side/ include each other"
expect_contains "a sideways include is named with its file" "$TMP/out" 'side/s.c: #include "../mid/m.h" reaches up: mid/ stands beside side/'
rm "$T/side/s.c" "$T/mid/m.c"

mk extra/x.c '#include "../low/a.h"'
expect_exit "a folder missing from the order fails" 1 $CHECK "$T" "$T.order"
expect_contains "the unplaced folder is named" "$TMP/out" "folder 'extra' is not in the include order"
rm -r "$T/extra"

echo 'no order here' >"$T.none"
expect_exit "an order file without the order is refused" 2 $CHECK "$T" "$T.none"
