# setInputSandbox with several kinds of entries. Working directory contains:
# input1.txt input2.dat a.cfg b.cfg myscript.sh libdir/mylib.py
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("isb")
j.setExecutable("/bin/ls", arguments="-l")
j.setInputSandbox(
    [
        "input1.txt",
        "input2.dat",
        "/abs/path/to/calib.db",
        "LFN:/myvo/user/u/username/big_input.tar.gz",
        "libdir",  # a local directory -> tarred to libdir.tar.gz
        "*.cfg",  # wildcard -> resolved with `ls -d` now, on the client
        "missing_file.txt",
    ]
)
