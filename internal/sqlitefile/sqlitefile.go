// Package sqlitefile names SQLite database files in the "file:" URI form
// that Cairn opens them with (mattn/go-sqlite3 passes such a DSN to SQLite
// with URI filenames on, and takes its own parameters from the query).
//
// In a URI, '?' starts the query and '#' the fragment: a data folder named
// "mail#2026" would otherwise open "mail" (or fail), and "%" starts an
// escape. URI percent-escapes those three; SQLite decodes them back.
package sqlitefile

import "strings"

var escaper = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

// URI returns "file:" and path, escaped, followed by "?" and query when
// query is not empty. query is appended as given (already encoded).
func URI(path, query string) string {
	u := "file:" + escaper.Replace(path)
	if query != "" {
		u += "?" + query
	}
	return u
}
