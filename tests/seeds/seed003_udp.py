#coding=utf-8
# Seed 003's UDP client ("Python: Socket编程", 1.UDP编程示例). It was Python 3 already:
# unchanged except, for the test only, the server address from SEED_HOST and SEED_PORT
# (defaults: the article's 127.0.0.1 and 9999). It reads its lines from standard input.
import socket
import os

if __name__ == '__main__':

    ip_port = (os.environ.get('SEED_HOST', '127.0.0.1'), int(os.environ.get('SEED_PORT', '9999')))

    sk = socket.socket(socket.AF_INET,socket.SOCK_DGRAM,0)
    while True:
        inp = input('数据：').strip()
        if inp == 'exit':
            break
        sk.sendto(bytes(inp,encoding='utf8'),ip_port)

    sk.close()
