// Writes src/services/kube/protobuf/built-in-messages.json: for each built-in kind the CEL
// backend lists, how its protobuf encoding maps onto the JSON the API server would send for
// the same object. The .proto files do not say that: JSON names, omitempty/omitzero,
// pointers, inlined structs and the types with a JSON form of their own (Time, Quantity,
// IntOrString, raw JSON) are Go struct tags and types, so this reads them from k8s.io/api by
// reflection. Anything the decoder (src/services/kube/protobuf) does not model stops the
// generator instead of being written.
//
//	npm run generate:protobuf-schema
package main

import (
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The kinds of src/backends/cel/CelKinds.ts (builtInKinds), by apiVersion.
var kinds = map[string][]any{
	"v1": {corev1.Pod{}, corev1.Namespace{}, corev1.Service{}, corev1.ServiceAccount{}, corev1.ConfigMap{}, corev1.Secret{},
		corev1.Node{}, corev1.PersistentVolume{}, corev1.PersistentVolumeClaim{}},
	"apps/v1":                      {appsv1.Deployment{}, appsv1.StatefulSet{}, appsv1.DaemonSet{}, appsv1.ReplicaSet{}},
	"batch/v1":                     {batchv1.Job{}, batchv1.CronJob{}},
	"networking.k8s.io/v1":         {networkingv1.Ingress{}, networkingv1.NetworkPolicy{}},
	"rbac.authorization.k8s.io/v1": {rbacv1.Role{}, rbacv1.ClusterRole{}, rbacv1.RoleBinding{}, rbacv1.ClusterRoleBinding{}},
}

// Types whose JSON is their own (MarshalJSON), by the name the decoder knows them by.
var ownJSON = map[reflect.Type]string{
	reflect.TypeOf(metav1.Time{}):          "time",
	reflect.TypeOf(resource.Quantity{}):    "quantity",
	reflect.TypeOf(intstr.IntOrString{}):   "intOrString",
	reflect.TypeOf(runtime.RawExtension{}): "rawJson",
	reflect.TypeOf(metav1.FieldsV1{}):      "rawJson",
}

// A field of a message: its protobuf number and how its value appears in JSON.
type field struct {
	JSON   string `json:"json,omitempty"`
	Number int    `json:"number"`
	// string, bool, int32, int64, bytes, time, quantity, intOrString, rawJson, map, or a message's name.
	Type     string `json:"type"`
	MapValue string `json:"mapValue,omitempty"`
	Repeated bool   `json:"repeated,omitempty"`
	Pointer  bool   `json:"pointer,omitempty"`
	// The struct is embedded: its fields are the enclosing object's.
	Inline    bool `json:"inline,omitempty"`
	OmitEmpty bool `json:"omitEmpty,omitempty"`
	OmitZero  bool `json:"omitZero,omitempty"`
}

var messages = map[string][]field{}

// Messages that embed TypeMeta. Nested in an object (a StatefulSet's volumeClaimTemplates),
// their apiVersion and kind are in its JSON when defaulting code set them, and never in
// protobuf: nothing in the types says which, so kinds that hold one are left to JSON.
var embedTypeMeta = map[string]bool{}

var (
	jsonMarshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshaler = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

func messageName(t reflect.Type) string {
	return strings.TrimPrefix(t.PkgPath(), "k8s.io/") + "." + t.Name()
}

func typeName(t reflect.Type, where string) string {
	if name, ok := ownJSON[t]; ok {
		return name
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) || t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		panic(fmt.Sprintf("%s: %s has a JSON form of its own that the decoder does not know", where, t))
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int32:
		return "int32"
	case reflect.Int64:
		return "int64"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
	case reflect.Struct:
		visit(t)
		return messageName(t)
	}
	panic(fmt.Sprintf("%s: %s is not a type the decoder knows", where, t))
}

func visit(t reflect.Type) {
	name := messageName(t)
	if _, seen := messages[name]; seen {
		return
	}
	messages[name] = nil
	fields := []field{}
	for index := 0; index < t.NumField(); index++ {
		goField := t.Field(index)
		where := name + "." + goField.Name
		jsonTag := strings.Split(goField.Tag.Get("json"), ",")
		protobufTag := goField.Tag.Get("protobuf")
		if jsonTag[0] == "-" {
			continue
		}
		if protobufTag == "" {
			// apiVersion and kind: not in a list's items, which take the list's type.
			if goField.Anonymous && goField.Type == reflect.TypeOf(metav1.TypeMeta{}) {
				embedTypeMeta[name] = true
				continue
			}
			panic(where + ": in JSON but not in protobuf")
		}
		number, err := strconv.Atoi(strings.Split(protobufTag, ",")[1])
		if err != nil {
			panic(where + ": protobuf tag " + protobufTag)
		}
		f := field{JSON: jsonTag[0], Number: number}
		for _, option := range jsonTag[1:] {
			switch option {
			case "omitempty":
				f.OmitEmpty = true
			case "omitzero":
				f.OmitZero = true
			case "inline":
			default:
				panic(where + ": json option " + option)
			}
		}
		if f.JSON == "" {
			if goField.Anonymous {
				f.Inline = true
			} else {
				f.JSON = goField.Name
			}
		}
		goType := goField.Type
		if goType.Kind() == reflect.Pointer {
			f.Pointer = true
			goType = goType.Elem()
		}
		switch {
		case goType.Kind() == reflect.Map:
			if goType.Key().Kind() != reflect.String || goType.Elem().Kind() == reflect.Pointer || goType.Elem().Kind() == reflect.Struct && ownJSON[goType.Elem()] == "" {
				panic(where + ": a map the decoder does not know")
			}
			f.Type = "map"
			f.MapValue = typeName(goType.Elem(), where)
		case goType.Kind() == reflect.Slice && goType.Elem().Kind() != reflect.Uint8:
			if goType.Elem().Kind() == reflect.Pointer || goType.Elem().Kind() == reflect.Slice {
				panic(where + ": a list the decoder does not know")
			}
			f.Repeated = true
			f.Type = typeName(goType.Elem(), where)
		default:
			f.Type = typeName(goType, where)
		}
		if f.Inline && (f.Pointer || f.Repeated || f.Type == "map" || ownJSON[goType] != "") {
			panic(where + ": an embedded field the decoder does not know")
		}
		fields = append(fields, f)
	}
	messages[name] = fields
}

// The first message below root (root itself aside) that embeds TypeMeta, or "".
func nestedTypeMeta(root string) string {
	seen := map[string]bool{root: true}
	queue := []string{root}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if name != root && embedTypeMeta[name] {
			return name
		}
		for _, f := range messages[name] {
			for _, next := range []string{f.Type, f.MapValue} {
				if _, isMessage := messages[next]; isMessage && !seen[next] {
					seen[next] = true
					queue = append(queue, next)
				}
			}
		}
	}
	return ""
}

func main() {
	// Keyed "<apiVersion>|<kind>".
	kindMessages := map[string]string{}
	for apiVersion, objects := range kinds {
		for _, object := range objects {
			t := reflect.TypeOf(object)
			visit(t)
			if nested := nestedTypeMeta(messageName(t)); nested != "" {
				fmt.Fprintf(os.Stderr, "%s|%s: left to JSON (%s embeds TypeMeta)\n", apiVersion, t.Name(), nested)
				continue
			}
			kindMessages[apiVersion+"|"+t.Name()] = messageName(t)
		}
	}
	version := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, module := range info.Deps {
			if module.Path == "k8s.io/api" {
				version = module.Version
			}
		}
	}
	// One message per line: reviewable diffs when k8s.io/api moves.
	// Only what the kinds written use.
	used := map[string]bool{}
	var use func(name string)
	use = func(name string) {
		if _, isMessage := messages[name]; !isMessage || used[name] {
			return
		}
		used[name] = true
		for _, f := range messages[name] {
			use(f.Type)
			use(f.MapValue)
		}
	}
	for _, name := range kindMessages {
		use(name)
	}
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	out := &strings.Builder{}
	header, _ := json.Marshal(map[string]any{"generatedBy": "scripts/protobuf-schema", "from": "k8s.io/api " + version, "kinds": kindMessages})
	fmt.Fprintf(out, "%s,\n \"messages\": {\n", strings.TrimSuffix(string(header), "}"))
	for index, name := range names {
		line, _ := json.Marshal(messages[name])
		separator := ","
		if index == len(names)-1 {
			separator = ""
		}
		fmt.Fprintf(out, "  %q: %s%s\n", name, line, separator)
	}
	out.WriteString(" }\n}\n")
	os.Stdout.WriteString(out.String())
}
