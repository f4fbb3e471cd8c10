# bash completion for hive-run and hive-cred                 -*- shell-script -*-
#
# Installed as bash-completion/completions/hive-run and .../hive-cred (the
# same file: bash-completion loads it by the command's name); or source it
# from ~/.bashrc. Credential and usage-spec ids come from the store's
# plaintext index and usage.json: nothing is decrypted, no key is needed.
#
# The option lists are words split on purpose (they hold no glob character).
# shellcheck disable=SC2086

# hive-cred's commands: NAME|OPTIONS|OPERANDS, one line a command.
# OPERANDS, one word an operand: id (a credential), spec (a usage spec),
# key (a key of the id before it), dir, template, command (a command of
# this table), word (anything).
# A command added to hive-cred is one line here: the zsh completion is
# built with this table too (completion/hive.zsh.in, by CMake).
_hive_cred_commands=(
  "init||"
  "keygen||"
  "add|--type --description --provider-id --auto-refresh --no-auto-refresh --expires --tag --from-file|id"
  "set|--type --expires|id key"
  "unset||id key"
  "get||id key"
  "show|--reveal --json|id"
  "list|--json|"
  "exists||id"
  "delete||id"
  "resolve||template"
  "validate|--json|id"
  "refresh|--retry-in-doubt|id"
  "login|--device --scope --no-browser --provider-id --timeout|id"
  "revoke||id"
  "accounts|--json|word"
  "sync||"
  "copy||dir dir"
  "rotate-key|--new-key-file|"
  "doctor|--fix|"
  "exec-credential|--key|id"
  "aws-credential-process||id"
  "audit|--since --id --json|"
  "usage||"
  "help||command"
)
# usage's subcommands, the same way
_hive_cred_usage=(
  "add|--key --scope --header --param --body --env --description --help-url|id"
  "list|--json|"
  "show||spec"
  "remove||spec"
)
_hive_cred_global="--store --json --help --version"
_hive_cred_types="api_key oauth2 basic_auth bearer_token custom"
# options that take a value (the next word)
_hive_cred_valued="--store -t --type -d --description --provider-id --expires --tag --key --header --param
  --body --env --help-url --from-file --new-key-file --scope --since --id --timeout"

_hive_run_options="-e --env --env-file --usage --file --render-env -i --ignore-environment --keep --no-refresh
  --allow-expired --allow-unsafe-env --fresh --on-refresh --kill-signal --kill-timeout --allow-launch-values
  --mask --mask-min --dry-run --json --store -h --help --version"
_hive_run_valued="-e --env --env-file --usage --file --render-env --keep --allow-unsafe-env --on-refresh
  --kill-signal --kill-timeout --mask-min --store"

# The words before the one being completed, with bash's splits at '=' undone
# (--store=DIR, -e NAME=VALUE): _hive_w. _hive_prev: the option whose value
# is being completed, or "NAME=" for the value of an assignment.
_hive_words()
{
    local i w
    _hive_w=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == = && ${#_hive_w[@]} -gt 0 ]]; then
            _hive_w[-1]+="="
            if ((i + 1 < COMP_CWORD)); then
                ((i++))
                _hive_w[-1]+=${COMP_WORDS[i]}
            fi
        else
            _hive_w+=("$w")
        fi
    done
    _hive_prev=
    ((${#_hive_w[@]} > 0)) && _hive_prev=${_hive_w[-1]}
    if [[ ${COMP_WORDS[COMP_CWORD - 1]} == = && ${#_hive_w[@]} -gt 0 ]]; then
        _hive_prev=${_hive_w[-1]%=}
        [[ $_hive_prev == --* ]] || _hive_prev="NAME="
        unset '_hive_w[-1]'
    fi
}

# Whether word $1 is in the list $2.
_hive_in() { [[ " ${2//$'\n'/ } " == *" $1 "* ]]; }

# The store directory: --store from the words typed, else the default.
_hive_store_dir()
{
    local i
    for ((i = 0; i < ${#_hive_w[@]}; i++)); do
        case ${_hive_w[i]} in
        --store) ((i + 1 < ${#_hive_w[@]})) && { printf '%s\n' "${_hive_w[i + 1]/#\~/$HOME}"; return; } ;;
        --store=*) printf '%s\n' "${_hive_w[i]#--store=}"; return ;;
        esac
    done
    if [[ -n ${HIVE_HOME-} ]]; then
        printf '%s\n' "$HIVE_HOME/credentials"
    elif [[ -n ${HOME-} ]]; then
        printf '%s\n' "$HOME/.hive/credentials"
    fi
}

# The names of the entries of the object at depth 2 of a JSON file written
# with indent 2 (as Hive and hive write the index and usage.json), one a
# line, with \" \/ and \\ undone.
_hive_json_names()
{
    [[ -r $1 ]] || return 1
    sed -n 's/^    "\(.*\)": {$/\1/p' "$1" 2>/dev/null |
        sed -e 's/\\"/"/g' -e 's/\\\//\//g' -e 's/\\\\/\\/g'
}

# Credential ids: the index's, else the file names (an id with '/' has a
# file named with '_'); never a decrypted file.
_hive_ids()
{
    local dir f
    dir=$(_hive_store_dir)
    [[ -n $dir && $dir != etcd://* && $dir != etcds://* ]] || return
    _hive_json_names "$dir/metadata/index.json" && return
    for f in "$dir"/credentials/*.enc; do
        [[ -e $f ]] || continue
        f=${f##*/}
        printf '%s\n' "${f%.enc}"
    done
}

_hive_specs()
{
    local dir
    dir=$(_hive_store_dir)
    [[ -n $dir ]] && _hive_json_names "$dir/usage.json"
}

# The key names of credential $1, from its index entry.
_hive_keys()
{
    local dir id
    dir=$(_hive_store_dir)
    [[ -r $dir/metadata/index.json ]] || return
    id=$(printf '%s' "$1" | sed -e 's/\\/\\\\\\\\/g' -e 's/"/\\\\"/g' -e 's/[]\/.*^$[]/\\&/g')
    sed -n "/^    \"$id\": {\$/,/^    }/p" "$dir/metadata/index.json" 2>/dev/null |
        sed -n '/"key_names": \[/,/\]/s/^        "\(.*\)",\{0,1\}$/\1/p'
}

# COMPREPLY: the words of stdin (one a line) that start with $cur.
_hive_reply()
{
    local w
    COMPREPLY=()
    while IFS= read -r w; do
        [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
    done
}

# {{id}} templates, for a word holding "{{".
_hive_templates()
{
    local head=${cur%\{\{*} part=${cur##*\{\{} id
    COMPREPLY=()
    while IFS= read -r id; do
        [[ $id == "$part"* ]] && COMPREPLY+=("$head{{$id}}")
    done < <(_hive_ids)
    compopt -o nospace 2>/dev/null
}

_hive_run()
{
    local cur=${COMP_WORDS[COMP_CWORD]} _hive_w _hive_prev i
    COMPREPLY=()
    _hive_words
    # getopt stops at '--' or the first operand: the command
    for ((i = 0; i < ${#_hive_w[@]}; i++)); do
        case ${_hive_w[i]} in
        --) ((i++)); break ;;
        --*=*) ;;
        -*) _hive_in "${_hive_w[i]}" "$_hive_run_valued" && ((i++)) ;;
        *) break ;;
        esac
    done
    if ((i < ${#_hive_w[@]})); then
        _hive_reply < <(compgen -f -- "$cur")     # the command's arguments
        return
    elif ((i == ${#_hive_w[@]} && i > 0)) && [[ ${_hive_w[i - 1]} == -- ]]; then
        _hive_reply < <(compgen -c -- "$cur" | sort -u)     # the command
        return
    fi
    case $_hive_prev in
    --store | --env-file) _hive_reply < <(compgen -f -- "$cur") ;;
    --usage) _hive_reply < <(_hive_specs) ;;
    --render-env | --keep | --allow-unsafe-env) _hive_reply < <(compgen -e -- "$cur") ;;
    --mask-min | --kill-timeout) ;;
    --on-refresh) _hive_reply < <(compgen -W "restart signal:HUP signal:USR1 signal:USR2 signal:TERM signal:INT" -- "$cur") ;;
    --kill-signal) _hive_reply < <(compgen -W "TERM INT QUIT HUP USR1 USR2 KILL" -- "$cur") ;;
    -e | --env | --file)
        if [[ $cur == *'{{'* ]]; then
            _hive_templates
        else
            _hive_reply < <(compgen -e -S = -- "$cur")
            compopt -o nospace 2>/dev/null
        fi ;;
    *)
        if [[ $cur == *'{{'* ]]; then
            _hive_templates
        elif [[ $_hive_prev == NAME= ]]; then
            :
        elif [[ $cur == -* ]]; then
            _hive_reply < <(printf '%s\n' $_hive_run_options)
        else
            _hive_reply < <(compgen -c -- "$cur" | sort -u)
        fi ;;
    esac
}

# The row of command $1 in the table named $2.
_hive_row()
{
    local -n _hive_rows=$2
    local row
    for row in "${_hive_rows[@]}"; do
        [[ ${row%%|*} == "$1" ]] && { printf '%s\n' "$row"; return 0; }
    done
    return 1
}

_hive_cred()
{
    local cur=${COMP_WORDS[COMP_CWORD]} _hive_w _hive_prev i row opts n
    local words=() operands=()
    COMPREPLY=()
    _hive_words
    case $_hive_prev in
    --store) _hive_reply < <(compgen -f -- "$cur"); return ;;
    -t | --type) _hive_reply < <(printf '%s\n' $_hive_cred_types); return ;;
    --provider-id) _hive_reply < <(_hive_ids); return ;;
    NAME= | --*=*) [[ $cur == *'{{'* ]] && _hive_templates; return ;;
    -d | --description | --expires | --tag | --key | --help-url) return ;;
    --header | --param | --body | --env) [[ $cur == *'{{'* ]] && _hive_templates; return ;;
    esac
    # the operands typed so far, options and their values left out
    for ((i = 0; i < ${#_hive_w[@]}; i++)); do
        case ${_hive_w[i]} in
        --) words+=("${_hive_w[@]:i+1}"); break ;;
        --*=*) ;;
        -*) _hive_in "${_hive_w[i]}" "$_hive_cred_valued" && ((i++)) ;;
        *) words+=("${_hive_w[i]}") ;;
        esac
    done
    if ((${#words[@]} == 0)); then
        if [[ $cur == -* ]]; then
            _hive_reply < <(printf '%s\n' $_hive_cred_global)
        else
            _hive_reply < <(printf '%s\n' "${_hive_cred_commands[@]%%|*}")
        fi
        return
    fi
    row=$(_hive_row "${words[0]}" _hive_cred_commands) || return
    n=1
    if [[ ${words[0]} == usage ]]; then
        if ((${#words[@]} == 1)); then
            _hive_reply < <(printf '%s\n' "${_hive_cred_usage[@]%%|*}")
            return
        fi
        row=$(_hive_row "${words[1]}" _hive_cred_usage) || return
        n=2
    fi
    opts=${row#*|}
    opts=${opts%%|*}
    read -r -a operands <<<"${row##*|}"
    if [[ $cur == -* ]]; then
        _hive_reply < <(printf '%s\n' $opts $_hive_cred_global | sort -u)
        return
    fi
    case ${operands[${#words[@]} - n]-} in
    id) _hive_reply < <(_hive_ids) ;;
    spec) _hive_reply < <(_hive_specs) ;;
    key) _hive_reply < <(_hive_keys "${words[-1]}") ;;
    dir) _hive_reply < <(compgen -d -- "$cur") ;;
    command) _hive_reply < <(printf '%s\n' "${_hive_cred_commands[@]%%|*}") ;;
    template) [[ $cur == *'{{'* ]] && _hive_templates ;;
    esac
}

complete -F _hive_run hive-run
complete -F _hive_cred hive-cred
