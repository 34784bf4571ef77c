package respenc

import "testing"

func TestAppendCommand(t *testing.T) {
	got := string(AppendCommand([]byte("x"), "AUTH", "", "pass word"))
	want := "x*3\r\n$4\r\nAUTH\r\n$0\r\n\r\n$9\r\npass word\r\n"
	if got != want {
		t.Errorf("AppendCommand = %q, want %q", got, want)
	}
	if got := string(AppendCommand(nil)); got != "*0\r\n" {
		t.Errorf("AppendCommand() = %q", got)
	}
}
