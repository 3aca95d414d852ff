use hexabase_it::peers::StripeMock;
use stripe_core::customer::CreateCustomer;

#[tokio::test]
async fn stripe_mock_creates_a_customer_through_async_stripe() {
    let mock = StripeMock::start().await;
    let customer = CreateCustomer::new()
        .email("billing@example.com")
        .name("Acme")
        .send(&mock.client())
        .await
        .expect("stripe-mock answers a customer create");
    assert!(
        customer.id.as_str().starts_with("cus_"),
        "{}",
        customer.id.as_str()
    );

    let unauthenticated = reqwest::Client::new()
        .post(format!("{}/v1/customers", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.status(),
        401,
        "it checks the API key like Stripe does"
    );
}
