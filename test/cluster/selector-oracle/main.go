// Command selector-oracle evaluates label selectors with apimachinery itself, for the CEL
// backend's differential selector test (test/cluster/CelSelectors.test.ts).
//
// Input on stdin, a JSON array of cases:
//
//	{"selector": <metav1.LabelSelector>, "query": "<list-request syntax or empty>", "labels": [{...}, ...]}
//
// Output on stdout, one JSON object per case: whether metav1.LabelSelectorAsSelector
// accepts the selector (and its error), whether it matches each label set, and the same for
// labels.Parse of the query (the string the backend would send to the API server).
package main

import (
	"encoding/json"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

type testCase struct {
	Selector *metav1.LabelSelector `json:"selector"`
	Query    *string               `json:"query"`
	Labels   []map[string]string   `json:"labels"`
}

type verdict struct {
	Error        string `json:"error,omitempty"`
	Matches      []bool `json:"matches,omitempty"`
	QueryError   string `json:"queryError,omitempty"`
	QueryMatches []bool `json:"queryMatches,omitempty"`
}

func matchAll(selector labels.Selector, sets []map[string]string) []bool {
	matches := make([]bool, len(sets))
	for i, set := range sets {
		matches[i] = selector.Matches(labels.Set(set))
	}
	return matches
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	verdicts := make([]verdict, len(cases))
	for i, c := range cases {
		// The backend treats an absent selector as "everything", as admission policies default it.
		selector := c.Selector
		if selector == nil {
			selector = &metav1.LabelSelector{}
		}
		if parsed, err := metav1.LabelSelectorAsSelector(selector); err != nil {
			verdicts[i].Error = err.Error()
		} else {
			verdicts[i].Matches = matchAll(parsed, c.Labels)
		}
		if c.Query != nil {
			if parsed, err := labels.Parse(*c.Query); err != nil {
				verdicts[i].QueryError = err.Error()
			} else {
				verdicts[i].QueryMatches = matchAll(parsed, c.Labels)
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(verdicts); err != nil {
		panic(err)
	}
}
