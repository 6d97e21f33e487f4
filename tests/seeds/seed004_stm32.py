#!/usr/bin/env python
# -*- coding: UTF-8 -*-
# Seed 004 ("毕设记录python利用socket进行文件传输"): the article's second client, which stands in
# for the STM32 (its firmware sends these same bytes through a serial-to-Wi-Fi module:
# the greeting is read, then `hello server`, `c`, `weeding`, `f` and the file's bytes, then close).
# Ported to Python 3; changed to run on Python 3, and nothing else:
#   - `print x` statements became print(x) calls;
#   - string literals sent on the socket became bytes literals (b'hello server', b'c', ...).
# For the test only: the server address and the file come from SEED_HOST, SEED_PORT and
# SEED_IMAGE (defaults: the article's 127.0.0.1, 9999 and ./image.bmp).

import socket,time,os

SIZE = 1024

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# 建立连接:
s.connect((os.environ.get('SEED_HOST', '127.0.0.1'), int(os.environ.get('SEED_PORT', '9999'))))
# 接收欢迎消息:
print(s.recv(SIZE))

s.send(b'hello server')
time.sleep(0.5)
print('command test begins ...')
s.send(b'c')
s.send(b'weeding')
print('command test ended')
time.sleep(0.5)

print('image test begins ...')
s.send(b'f')
time.sleep(0.2)
with open(os.environ.get('SEED_IMAGE', './image.bmp'), 'rb') as f:
	for data in f:
		s.send(data)
print('image test ended')

s.close()
print('connection closed')
