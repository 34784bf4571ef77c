package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Every configuration key can be set from the environment, so that a
// sidecar needs no file: the key's path in upper case, dots as
// underscores, after SLOTPROXY_ (cluster.seeds is SLOTPROXY_CLUSTER_SEEDS).
// A string is taken as it is, a list of strings is comma-separated, and
// any other value is read as the YAML the file would hold ("5s", "true",
// "[{name: app, password: s3cret}]").
const envPrefix = "SLOTPROXY_"

// configKey is one key of the configuration: its dotted path
// (clients.max_clients) and where it is in Config.
type configKey struct {
	path  string
	index []int // the field's index path in Config
}

// configKeys lists every key, in Config's order: the leaves of its
// structs, as the file names them.
func configKeys() []configKey {
	var keys []configKey
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+tag+".", idx)
				continue
			}
			keys = append(keys, configKey{path: prefix + tag, index: idx})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return keys
}

// envName is the variable that sets the key at path.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// envNames returns the names of every variable the configuration reads.
func envNames() []string {
	var names []string
	for _, k := range configKeys() {
		names = append(names, envName(k.path))
	}
	sort.Strings(names)
	return names
}

// applyEnv sets cfg's keys from the variables lookup finds. A variable
// whose value does not fit its key is an error naming the variable (and
// never its value, which may be a password).
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(cfg).Elem()
	for _, k := range configKeys() {
		name := envName(k.path)
		s, ok := lookup(name)
		if !ok {
			continue
		}
		f := v.FieldByIndex(k.index)
		switch {
		case f.Kind() == reflect.String:
			f.SetString(s)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			var list []string
			for _, item := range strings.Split(s, ",") {
				if item = strings.TrimSpace(item); item != "" {
					list = append(list, item)
				}
			}
			f.Set(reflect.ValueOf(list))
		default:
			p := reflect.New(f.Type())
			if err := yaml.Unmarshal([]byte(s), p.Interface()); err != nil {
				return fmt.Errorf("environment variable %s: not a valid %s", name, f.Type())
			}
			f.Set(p.Elem())
		}
	}
	return nil
}
