"""evd's murmur2 partitioner agrees with kafka-python's (and so with the Java client's and librdkafka's
murmur2_random): a keyed consumer fetches the partition its key's records go to, whichever client wrote them."""

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner import murmur2 as kafka_python_murmur2

from evd.kafka_partitions import murmur2, partitions_of


@settings(max_examples=2000)
@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(data):
    assert murmur2(data) & 0x7FFFFFFF == kafka_python_murmur2(data) & 0x7FFFFFFF


def test_known_values_from_the_java_client():
    # Kafka's own test vectors (clients' UtilsTest.testMurmur2), as signed 32-bit integers.
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536, b"": 275646681}
    for data, expected in vectors.items():
        assert murmur2(data) == expected & 0xFFFFFFFF


def test_a_keyed_consumer_follows_its_keys_partitions_only():
    assert partitions_of(None, [2, 0, 1]) == [0, 1, 2]
    one = partitions_of({"D1"}, [0, 1, 2])
    assert len(one) == 1 and one[0] in (0, 1, 2)
    assert partitions_of({"D1"}, [2, 1, 0]) == one  # over the sorted partitions, as the producers
    both = partitions_of({"D1", "D2"}, [0, 1, 2])
    assert both == sorted(set(one) | set(partitions_of({"D2"}, [0, 1, 2])))
