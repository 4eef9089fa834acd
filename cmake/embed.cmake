# Writes the file IN as a NUL-terminated C array named NAME into OUT:
#   cmake -DIN=... -DOUT=... -DNAME=... -P embed.cmake
# (so that text such as the PostgreSQL schema is built into a binary
# without a run-time file to find).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
file(WRITE "${OUT}" "/* Generated from ${IN} by cmake/embed.cmake. */\nconst char ${NAME}[] = {\n${hex}0x00 };\n")
