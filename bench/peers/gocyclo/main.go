// gocyclo measures Go files the way pmccabe measures C and C++ ones, so that
// bench/scripts/complexity.py can put the Go peers and ringlink in one table.
// Standard library only (go/parser, go/ast, go/scanner).
//
// Cyclomatic complexity of a function, pmccabe's "traditional" column:
// 1, plus 1 for each
//
//	if (else-if included: it is another if), for (range included),
//	case of a switch or type switch, case of a select,
//	&& and ||
//
// A default clause adds nothing (pmccabe counts "case" tokens, and Go's
// default is no more a branch than C's). Go has no while, ?: or catch. The
// decisions inside a function literal count for the function that contains
// it, as pmccabe folds a C++ lambda into its enclosing function; a function
// literal outside any function (a package-level var) is a function of its
// own, named "func literal".
//
// Lines of code: lines holding at least one token that is not a comment
// (blank and comment-only lines do not count), as `pmccabe -d` output with
// blank lines removed counts them for C++.
//
// usage: gocyclo FILE.go...
//
// prints JSON: {"files": [{"file", "loc"}], "functions": [{"file", "line", "name", "ccn"}]}
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
)

type fileResult struct {
	File string `json:"file"`
	LOC  int    `json:"loc"`
}

type function struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Name string `json:"name"`
	CCN  int    `json:"ccn"`
}

type result struct {
	Files     []fileResult `json:"files"`
	Functions []function   `json:"functions"`
}

// complexity is 1 plus the decisions in node, function literals included.
func complexity(node ast.Node) int {
	n := 1
	ast.Inspect(node, func(x ast.Node) bool {
		switch x := x.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			n++
		case *ast.CaseClause:
			if x.List != nil { // nil: default
				n++
			}
		case *ast.CommClause:
			if x.Comm != nil { // nil: default
				n++
			}
		case *ast.BinaryExpr:
			if x.Op == token.LAND || x.Op == token.LOR {
				n++
			}
		}
		return true
	})
	return n
}

// funcName is "name" or "Recv.name" (pointer or not).
func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok { // generic receiver
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + d.Name.Name
	}
	return d.Name.Name
}

// linesOfCode counts the lines on which a non-comment token starts or ends
// (a multi-line raw string counts each of its lines).
func linesOfCode(fset *token.FileSet, path string, src []byte) int {
	file := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0) // comments are skipped
	lines := map[int]bool{}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue // an inserted semicolon is not code of its own
		}
		first := file.Line(pos)
		last := first
		if tok == token.STRING {
			last = file.Line(pos + token.Pos(len(lit)) - 1)
		}
		for l := first; l <= last; l++ {
			lines[l] = true
		}
	}
	return len(lines)
}

func measure(path string, out *result) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		return err
	}
	out.Files = append(out.Files, fileResult{path, linesOfCode(token.NewFileSet(), path, src)})
	for _, decl := range f.Decls {
		if d, ok := decl.(*ast.FuncDecl); ok {
			if d.Body != nil {
				out.Functions = append(out.Functions,
					function{path, fset.Position(d.Pos()).Line, funcName(d), complexity(d.Body)})
			}
			continue
		}
		ast.Inspect(decl, func(x ast.Node) bool {
			if lit, ok := x.(*ast.FuncLit); ok {
				out.Functions = append(out.Functions,
					function{path, fset.Position(lit.Pos()).Line, "func literal", complexity(lit.Body)})
				return false
			}
			return true
		})
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gocyclo FILE.go...")
		os.Exit(2)
	}
	out := result{Files: []fileResult{}, Functions: []function{}}
	for _, path := range os.Args[1:] {
		if err := measure(path, &out); err != nil {
			fmt.Fprintln(os.Stderr, "gocyclo:", err)
			os.Exit(1)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
