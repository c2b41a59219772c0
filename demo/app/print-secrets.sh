#!/bin/sh
# Piggy demo app: prints its PID and the environment variables named in its arguments, as the
# application sees them once piggy-env has replaced the piggy: references and exec'd it. The values
# are the demo's fake ones (demo/aws.yaml); a real application simply reads its environment.
#
# Usage: print-secrets.sh NAME...
#
# Runs in any POSIX shell: locally (`deno task demo`) and in the demo pods (a glibc image with
# /bin/sh, the script mounted from the ConfigMap piggy-demo-app; see demo/README.md).
set -eu

echo "demo app: pid $$"
for name in "$@"; do
  case $name in
    '' | [0-9]* | *[!A-Za-z0-9_]*)
      echo "  (skipping \"$name\": not a variable name)"
      continue
      ;;
  esac
  eval "is_set=\${$name+set}"
  if [ "$is_set" = set ]; then
    eval "value=\${$name}"
    echo "  $name=$value"
  else
    echo "  $name is not set"
  fi
done

# piggy-env removes its own configuration (PIGGY_*) before starting the application.
leftovers=$(env | sed -n 's/^\(PIGGY_[A-Za-z0-9_]*\)=.*/\1/p' | tr '\n' ' ')
leftovers=${leftovers% }
echo "  launcher variables left in my environment: ${leftovers:-none}"
