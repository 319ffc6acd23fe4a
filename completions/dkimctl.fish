# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dkimctl_global_optspecs
    string join \n root= c/config= installed-as= templates= color= h/help V/version
end

function __fish_dkimctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dkimctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dkimctl_using_subcommand
    set -l cmd (__fish_dkimctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dkimctl -n "__fish_dkimctl_needs_command" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_needs_command" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_needs_command" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_needs_command" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_needs_command" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -s V -l version -d 'Print version'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "check" -d 'Validate dkim.toml and report every problem at file:line:col'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "render" -d 'Write every artifact into a directory (a tree mirroring /)'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "plan" -d 'Show what apply would change; exit 0 nothing to do, 1 changes pending'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "keys" -d 'Key generation'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "dns" -d 'DNS records: what to publish, and whether it is published right'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "bootstrap" -d 'From nothing to a signing host: write dkim.toml (unless it exists), generate keys, show and apply the plan, print the DNS records'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "rotate" -d 'Key rotation without a window where mail is signed by a key receivers cannot find: new key (pending) -> switch once published -> retire after the grace period. Each step is idempotent'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "serve" -d 'Run the bundled signing and verifying milter'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "sign" -d 'Sign a message file with the engine\'s code; print the signed message'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "verify" -d 'Verify every DKIM signature of a message file; print one result per signature. Exit 0 when all pass, 1 otherwise'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "selftest" -d 'Connect to the live milter as the MTA does, have a probe message signed for every domain and verify it against DNS'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "audit" -d 'Inspect the live DKIM setup read-only (OpenDKIM, Postfix, Sendmail, units, keys; with dkim.toml also drift from the plan) and report findings. Exit 0 none at or above --fail-on, 1 findings, 2 could not audit'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "import" -d 'Write the dkim.toml equivalent to an existing OpenDKIM setup (its opendkim.conf, tables, TrustedHosts, Postfix milter settings) to standard output, naming whatever is not carried over. Exit 1 when the setup cannot be adopted, or would be signed differently afterwards (unless --lossy)'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "schema" -d 'Print the JSON Schema of dkim.toml (for editors: taplo, Even Better TOML)'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "man" -d 'Write the man pages (dkimctl(8), one per subcommand, dkim.toml(5)) into a directory'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "apply" -d 'Carry out the plan: atomic writes, owners, modes, then reloads'
complete -c dkimctl -n "__fish_dkimctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand check" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand check" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand check" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand check" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand check" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -l out -d 'The directory to write into' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand render" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -l json -d 'Print the result as JSON'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -s v -l verbose -d 'List unchanged files too'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -l offline -d 'Look at files only: do not ask systemd about the units, talk to the milter socket or look at running processes (on the live root these are part of the plan and of the audit by default)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -f -a "generate" -d 'Create every key dkim.toml names that does not exist yet (0600, owned by the service user, PKCS#8 PEM as opendkim-genkey writes)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and not __fish_seen_subcommand_from generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -l force -d 'Replace existing keys (their DNS records must be republished)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Create every key dkim.toml names that does not exist yet (0600, owned by the service user, PKCS#8 PEM as opendkim-genkey writes)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -f -a "records" -d 'Print the TXT record to publish for every domain and selector'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -f -a "publish" -d 'Make DNS match dkim.toml (as its dns table says): publish the record of every pending, active and retiring key and the revoked form of retired keys, touching only configured selectors; then check them at every authoritative server and the resolver. Exit 0 DNS matches, 1 changes pending (--dry-run, manual) or not served yet, 2 failed'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -f -a "check" -d 'Look every selector\'s record up and judge it; report SPF and DMARC. Exit 0 all ok, 1 findings, 2 could not check'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and not __fish_seen_subcommand_from records publish check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -l format -d 'zone: one record in zone-file syntax, split into strings of at most 255 bytes; plain: the joined value, for web DNS panels' -r -f -a "zone\t'Zone-file form: `name IN TXT ( "..." "..." )`'
plain\t'Name and joined value'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -l json -d 'Print both forms as JSON'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from records" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l nameserver -d 'Ask this name server, IP or IP:PORT, instead of the configured or the system\'s' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l dry-run -d 'Show what would change and the update that would be sent; change nothing'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -l json -d 'Print the result as JSON'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from publish" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l nameserver -d 'Ask this name server, IP or IP:PORT, instead of the configured or the system\'s' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l timeout -d 'Seconds to wait for each answer' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -l json -d 'Print the result as JSON'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from help" -f -a "records" -d 'Print the TXT record to publish for every domain and selector'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from help" -f -a "publish" -d 'Make DNS match dkim.toml (as its dns table says): publish the record of every pending, active and retiring key and the revoked form of retired keys, touching only configured selectors; then check them at every authoritative server and the resolver. Exit 0 DNS matches, 1 changes pending (--dry-run, manual) or not served yet, 2 failed'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from help" -f -a "check" -d 'Look every selector\'s record up and judge it; report SPF and DMARC. Exit 0 all ok, 1 findings, 2 could not check'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand dns; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l domain -d 'A domain to sign for (repeatable)' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l mta -d 'The MTA on this host' -r -f -a "postfix\t'Postfix (main.cf and master.cf are edited)'
sendmail\t'Sendmail (a sendmail.mc line)'
none\t'No MTA integration'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l opendkim -d 'Configure OpenDKIM instead of the bundled engine'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -s y -l yes -d 'Do not ask for confirmation (needed without a terminal)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l no-reload -d 'Do not run reloads (they are printed instead)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -l offline -d 'Look at files only: do not ask systemd about the units, talk to the milter socket or look at running processes (on the live root these are part of the plan and of the audit by default)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand bootstrap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l nameserver -d 'Ask this name server, IP or IP:PORT, instead of the configured or the system\'s' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l continue -d 'Take the next step (switch, or retire) when DNS allows it'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l auto -d 'Take every step that is due, unattended: start a rotation when the active key is older than the rotation interval (every), publish, switch once every server serves the new record for a TTL, retire after the grace period, apply (reloading, never restarting the engine). Safe to run hourly. Exit 0 done or nothing due, 1 waiting for a record that is not published, 2 a step failed'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -l json -d 'Print the result as JSON (with --auto)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand rotate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -l socket -d 'Listen here instead of the configured socket (unix:/path, inet:HOST:PORT, inet:PORT@HOST)' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -l allow-root -d 'Keep running as root when the service user cannot be switched to'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand sign" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand sign" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand sign" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand sign" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand sign" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand sign" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -l nameserver -d 'Ask this name server, IP or IP:PORT, instead of the configured or the system\'s' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l socket -d 'Connect here instead of the configured socket' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l nameserver -d 'Ask this name server, IP or IP:PORT, instead of the configured or the system\'s' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -l local-keys -d 'Verify against the records the local keys imply, not DNS'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand selftest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l fail-on -d 'The least severity that makes the exit code 1' -r -f -a "error\t'Errors only'
warning\t'Warnings and errors'
info\t'Any finding'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l nameserver -d 'Ask this name server, IP or IP:PORT, instead of the configured or the system\'s' -r
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l json -d 'Print the result as JSON'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l dns -d 'Also check every selector\'s published DNS record'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -l offline -d 'Look at files only: do not ask systemd about the units, talk to the milter socket or look at running processes (on the live root these are part of the plan and of the audit by default)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -l lossy -d 'Write the dkim.toml even where leaving a line out changes what is signed (each such line is named, also in `plan`)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand schema" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand schema" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand schema" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand schema" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand schema" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand schema" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand completions" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand completions" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand completions" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand completions" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand completions" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand man" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand man" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand man" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand man" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand man" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l root -d 'Work on the system under DIR instead of / (a sandbox, an image being built); every path in dkim.toml is resolved under it' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -s c -l config -d 'The declarative file [default: ROOT/etc/dkimctl/dkim.toml]' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l installed-as -d 'Render as if the configuration were installed at FILE (a path on the host): the file named in rendered headers and in the engine\'s unit. For config management that plans from a copy before installing it (`ansible --check`), so both render the same bytes' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l templates -d 'Take templates from DIR where a file of the same name exists there' -r -F
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l color -d 'When to use colour' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set'
always\t'Always'
never\t'Never'"
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -s y -l yes -d 'Do not ask for confirmation (needed without a terminal)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l no-reload -d 'Do not run reloads (they are printed instead)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l json -d 'Print the result as JSON'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -l offline -d 'Look at files only: do not ask systemd about the units, talk to the milter socket or look at running processes (on the live root these are part of the plan and of the audit by default)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "check" -d 'Validate dkim.toml and report every problem at file:line:col'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "render" -d 'Write every artifact into a directory (a tree mirroring /)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "plan" -d 'Show what apply would change; exit 0 nothing to do, 1 changes pending'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "keys" -d 'Key generation'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "dns" -d 'DNS records: what to publish, and whether it is published right'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "bootstrap" -d 'From nothing to a signing host: write dkim.toml (unless it exists), generate keys, show and apply the plan, print the DNS records'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "rotate" -d 'Key rotation without a window where mail is signed by a key receivers cannot find: new key (pending) -> switch once published -> retire after the grace period. Each step is idempotent'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "serve" -d 'Run the bundled signing and verifying milter'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "sign" -d 'Sign a message file with the engine\'s code; print the signed message'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "verify" -d 'Verify every DKIM signature of a message file; print one result per signature. Exit 0 when all pass, 1 otherwise'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "selftest" -d 'Connect to the live milter as the MTA does, have a probe message signed for every domain and verify it against DNS'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "audit" -d 'Inspect the live DKIM setup read-only (OpenDKIM, Postfix, Sendmail, units, keys; with dkim.toml also drift from the plan) and report findings. Exit 0 none at or above --fail-on, 1 findings, 2 could not audit'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "import" -d 'Write the dkim.toml equivalent to an existing OpenDKIM setup (its opendkim.conf, tables, TrustedHosts, Postfix milter settings) to standard output, naming whatever is not carried over. Exit 1 when the setup cannot be adopted, or would be signed differently afterwards (unless --lossy)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "schema" -d 'Print the JSON Schema of dkim.toml (for editors: taplo, Even Better TOML)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "completions" -d 'Print a shell completion script'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "man" -d 'Write the man pages (dkimctl(8), one per subcommand, dkim.toml(5)) into a directory'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "apply" -d 'Carry out the plan: atomic writes, owners, modes, then reloads'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and not __fish_seen_subcommand_from check render plan keys dns bootstrap rotate serve sign verify selftest audit import schema completions man apply help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "generate" -d 'Create every key dkim.toml names that does not exist yet (0600, owned by the service user, PKCS#8 PEM as opendkim-genkey writes)'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and __fish_seen_subcommand_from dns" -f -a "records" -d 'Print the TXT record to publish for every domain and selector'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and __fish_seen_subcommand_from dns" -f -a "publish" -d 'Make DNS match dkim.toml (as its dns table says): publish the record of every pending, active and retiring key and the revoked form of retired keys, touching only configured selectors; then check them at every authoritative server and the resolver. Exit 0 DNS matches, 1 changes pending (--dry-run, manual) or not served yet, 2 failed'
complete -c dkimctl -n "__fish_dkimctl_using_subcommand help; and __fish_seen_subcommand_from dns" -f -a "check" -d 'Look every selector\'s record up and judge it; report SPF and DMARC. Exit 0 all ok, 1 findings, 2 could not check'
